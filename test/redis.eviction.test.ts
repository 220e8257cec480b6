import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { assertNoEviction, maxmemoryPolicy } from '../src/lib/eviction.js';
import { freePort, runCli } from './helpers/process.js';
import { startRedisServer, type RedisProcess } from './helpers/redis.js';

// A Redis that may evict keys under memory pressure would drop run records, dedupe keys and
// queue locks without a trace, so the daemon refuses it at start, naming the setting and the
// fix. BullMQ asks for the same (maxmemory-policy noeviction).
const dir = mkdtempSync(join(tmpdir(), 'runlet-eviction-'));
const config = join(dir, 'runlet.yaml');
writeFileSync(config, 'tasks:\n  hello: { image: runlet/busybox:local, command: [echo, hi] }\n');

const servers: RedisProcess[] = [];
async function server(args: string[]): Promise<RedisProcess> {
  const s = await startRedisServer({ args });
  servers.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  for (const s of servers) rmSync(s.dir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

async function start(redisUrl: string) {
  // Killed if it is still running after 20 s: a daemon that started instead of refusing.
  return runCli(
    ['start', '-c', config],
    { REDIS_URL: redisUrl, RUNLET_PORT: String(await freePort()), RUNLET_DATA: join(dir, 'data') },
    dir,
    20_000,
  );
}

describe('a Redis whose maxmemory-policy can evict keys', () => {
  it('is refused at start: runlet start exits non-zero naming the setting, its value and the fix', async () => {
    const lru = await server(['--maxmemory-policy', 'allkeys-lru']);
    const { code, stdout, stderr } = await start(lru.url);
    expect(code).toBe(1);
    const said = stdout + stderr;
    expect(said).toContain('maxmemory-policy allkeys-lru');
    expect(said).toContain('maxmemory-policy noeviction');
    expect(said).not.toContain('runlet is running');
    // Refused before anything was written: not even the cluster id.
    const r = new Redis(lru.port, '127.0.0.1');
    expect(await r.dbsize()).toBe(0);
    r.disconnect();
  });

  it('is refused also where CONFIG is renamed away: the policy is read from INFO memory', async () => {
    const hidden = await server(['--maxmemory-policy', 'volatile-ttl', '--rename-command', 'CONFIG', '']);
    const { code, stdout, stderr } = await start(hidden.url);
    expect(code).toBe(1);
    expect(stdout + stderr).toContain('maxmemory-policy volatile-ttl');
  });

  it('with noeviction and CONFIG renamed away, is let through (read from INFO, not refused for want of CONFIG)', async () => {
    const fine = await server(['--maxmemory-policy', 'noeviction', '--rename-command', 'CONFIG', '']);
    const r = new Redis(fine.port, '127.0.0.1');
    try {
      expect(await maxmemoryPolicy(r)).toBe('noeviction');
      await expect(assertNoEviction(r, fine.url)).resolves.toBeUndefined();
    } finally {
      r.disconnect();
    }
  });
});
