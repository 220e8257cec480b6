import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';

/**
 * The embedded default for one node: a `redis-server` child process on a unix socket with
 * an append-only file in the data dir, so run history survives a restart and a
 * single-node user sets up nothing. With REDIS_URL set, none of this runs.
 */
export interface EmbeddedRedis {
  /** ioredis connection options pointing at the socket. */
  readonly path: string;
  /** `redis+unix://` style URL, for logs and for child processes. */
  readonly url: string;
  /** True when this process started the server (and so stops it). */
  readonly owned: boolean;
  stop(): Promise<void>;
}

export async function startEmbeddedRedis(dataDir: string, opts: { startTimeoutMs?: number } = {}): Promise<EmbeddedRedis> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'redis.sock');
  const url = `unix://${socket}`;

  // A server another runlet process (or a daemon killed with SIGKILL) left on this data
  // dir is reused rather than fought over: both would own the same append-only file.
  if (existsSync(socket) && (await answers(socket))) {
    return { path: socket, url, owned: false, stop: async () => undefined };
  }

  const child = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      // BullMQ and the run records must never be evicted to make room.
      '--maxmemory-policy',
      'noeviction',
      '--pidfile',
      join(dir, 'redis.pid'),
      '--logfile',
      join(dir, 'redis.log'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  child.once('error', (err) => (stderr += String(err)));

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  while (!(await answers(socket))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `embedded redis-server did not start on ${socket}: ${stderr.trim() || `see ${join(dir, 'redis.log')}`}` +
          ' (is the redis-server package installed? set REDIS_URL to use another server)',
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    path: socket,
    url,
    owned: true,
    stop: async () => stopChild(child, exited),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  // SIGTERM makes redis flush the append-only file before it exits.
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function answers(socket: string): Promise<boolean> {
  const probe = new Redis({
    path: socket,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
