import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, freePort, spawnDaemon } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';

// `runlet start` as a process: where a daemon without a token may listen, and that one
// with a token on all interfaces still checks Host.
const dir = mkdtempSync(join(tmpdir(), 'runlet-cli-listen-'));
const CONFIG = join(dir, 'runlet.yaml');
writeFileSync(CONFIG, `defaults: { image: runlet/busybox:local }\ntasks:\n  fine: { command: ["true"] }\n`);

/**
 * `runlet start` until it exits, or 20 s. A daemon that started instead of refusing is
 * stopped with SIGTERM (so it cleans up) and reported as code null.
 */
function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'start', '-c', CONFIG], {
      // No inherited token; an unreachable Redis keeps a daemon that did start from doing anything.
      env: { ...process.env, RUNLET_TOKEN: '', RUNLET_DATA: join(dir, 'data'), REDIS_URL: 'redis://127.0.0.1:1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('runlet start refuses to listen open to strangers', () => {
  it.each(['0.0.0.0', '192.0.2.10', 'runlet.example.com'])(
    'RUNLET_HOST=%s without RUNLET_TOKEN: exits 1 and says how to fix it',
    async (host) => {
      const { code, stderr } = await start({ RUNLET_HOST: host });
      expect(code).toBe(1);
      expect(stderr).toContain(`runlet: RUNLET_HOST=${host} is not a loopback address, and RUNLET_TOKEN is not set`);
      expect(stderr).toContain('Set RUNLET_TOKEN');
      expect(stderr).not.toContain('    at '); // a message, not a stack trace
    },
  );

  it('RUNLET_ALLOWED_HOSTS=* without RUNLET_TOKEN: exits 1', async () => {
    const { code, stderr } = await start({ RUNLET_ALLOWED_HOSTS: '*' });
    expect(code).toBe(1);
    expect(stderr).toContain('runlet: RUNLET_ALLOWED_HOSTS=* turns off the Host check');
  });

  it('a RUNLET_ALLOWED_HOSTS entry that is no host name: exits 1 naming it', async () => {
    const { code, stderr } = await start({ RUNLET_ALLOWED_HOSTS: 'ok.example, http://bad/' });
    expect(code).toBe(1);
    expect(stderr).toContain('RUNLET_ALLOWED_HOSTS must be host names or addresses separated by commas (or *), got "http://bad/"');
  });
});

describe('with a token on all interfaces', () => {
  it('starts, answers on 127.0.0.1 and an allowed name, and refuses another Host', async () => {
    const redis = await startTestRedis();
    const port = await freePort('0.0.0.0');
    const daemon = spawnDaemon(CONFIG, {
      REDIS_URL: redis.url,
      RUNLET_PORT: String(port),
      RUNLET_HOST: '0.0.0.0',
      RUNLET_TOKEN: 'listen-token',
      RUNLET_ALLOWED_HOSTS: 'runlet.example.com',
      RUNLET_NODE: 'listen-node',
    });
    try {
      await daemon.ready;
      const status = (host: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port, path: '/healthz', headers: { host } },
            (res) => (res.resume(), resolve(res.statusCode ?? 0)),
          );
          req.on('error', reject);
          req.end();
        });
      expect(await status(`127.0.0.1:${port}`)).toBe(200);
      expect(await status(`runlet.example.com:${port}`)).toBe(200);
      expect(await status(`evil.example:${port}`)).toBe(421);
    } finally {
      daemon.child.kill('SIGTERM');
      if (daemon.child.exitCode === null) await new Promise((r) => daemon.child.once('exit', r));
      await redis.stopAndClean();
    }
  });
});
