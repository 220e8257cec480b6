import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/lib/embedded-redis.js';

/**
 * A real redis-server of the test's own, on a private unix socket, started by the same
 * code as the daemon's embedded default. Test files run in parallel and never share one.
 */
export async function startTestRedis(): Promise<EmbeddedRedis & { dir: string; stopAndClean: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'runlet-test-redis-'));
  const redis = await startEmbeddedRedis(dir);
  return {
    ...redis,
    stop: redis.stop,
    dir,
    stopAndClean: async () => {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A redis-server (or redis-sentinel) of a test's own on a loopback TCP port, with its data dir and log. */
export interface RedisProcess {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly dir: string;
  readonly child: ChildProcess;
  /** Stops it (SIGTERM: a redis-server writes its append-only file first) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Its log so far, for a failing test's message. */
  log(): string;
}

/**
 * Starts `redis-server` (or, with `sentinel`, `redis-sentinel` on a config file it may
 * rewrite) on `port` (a free one unless given), in `dir` (a fresh temp dir unless given, so a
 * restart on the same dir reads its append-only file), and waits until it answers PING.
 * `args` are extra server options (`['--maxmemory-policy', 'allkeys-lru']`).
 */
export async function startRedisServer(
  opts: { args?: readonly string[]; port?: number; dir?: string; sentinel?: string } = {},
): Promise<RedisProcess> {
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'runlet-test-redis-tcp-'));
  const logfile = join(dir, opts.sentinel ? `sentinel-${port}.log` : 'redis.log');
  let cmd = 'redis-server';
  let argv: string[];
  if (opts.sentinel !== undefined) {
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nlogfile ${logfile}\n${opts.sentinel}\n`);
    cmd = 'redis-sentinel';
    argv = [conf];
  } else {
    argv = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--logfile', logfile, ...(opts.args ?? [])];
  }
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const log = () => {
    try {
      return readFileSync(logfile, 'utf8') + stderr;
    } catch {
      return stderr;
    }
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    const ok = await probe
      .connect()
      .then(() => probe.ping())
      .then(
        () => true,
        () => false,
      );
    probe.disconnect();
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${cmd} did not start on port ${port}:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    child,
    log,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
