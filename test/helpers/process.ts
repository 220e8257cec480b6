import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { removeClusterContainers } from './daemon.js';
import { freePort } from './ports.js';
import { startTestRedis } from './redis.js';

type TestRedis = Awaited<ReturnType<typeof startTestRedis>>;

export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

export { freePort } from './ports.js';

export interface DaemonProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves once the daemon logged that it is running. */
  ready: Promise<void>;
}

/** `runlet start` as a separate process (the built CLI), with its JSON log collected. */
export function spawnDaemon(configFile: string, env: Record<string, string>): DaemonProcess {
  const child = spawn(process.execPath, [CLI, 'start', '-c', configFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('runlet is running')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`daemon exited with ${code} before it was ready:\n${out}`)));
  });
  ready.catch(() => undefined);
  return { child, output: () => out, ready };
}

/**
 * Runs the CLI to completion. With `killAfterMs`, a CLI still running then is killed (SIGKILL,
 * code null): for a command expected to exit, such as a `start` that must refuse to start.
 */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
  killAfterMs?: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A test's daemon as its own process (the built CLI), on a Redis of its own, with the
 * environment a CLI call needs to reach it; stopped with SIGTERM and cleaned up after.
 */
export function useDaemonProcess(
  configFile: string,
  node: string,
): { env: Record<string, string>; redis: TestRedis; daemon: DaemonProcess } {
  const ctx = {} as { env: Record<string, string>; redis: TestRedis; daemon: DaemonProcess };
  beforeAll(async () => {
    ctx.redis = await startTestRedis();
    ctx.env = { REDIS_URL: ctx.redis.url, RUNLET_PORT: String(await freePort()), RUNLET_NODE: node };
    ctx.daemon = spawnDaemon(configFile, ctx.env);
    await ctx.daemon.ready;
  });
  afterAll(async () => {
    ctx.daemon?.child.kill('SIGTERM');
    if (ctx.daemon && ctx.daemon.child.exitCode === null) await new Promise((r) => ctx.daemon.child.once('exit', r));
    if (!ctx.redis) return;
    const r = new Redis({ path: ctx.redis.path });
    const clusterId = await r.get('runlet:cluster-id');
    r.disconnect();
    if (clusterId) await removeClusterContainers(clusterId);
    await ctx.redis.stopAndClean();
  });
  return ctx;
}
