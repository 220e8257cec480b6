import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { removeClusterContainers } from './daemon.js';
import { startTestRedis } from './redis.js';
import { freePort, spawnDaemon, type DaemonProcess } from './spawn.js';

export { CLI, freePort, runCli, spawnDaemon, type DaemonProcess } from './spawn.js';

type TestRedis = Awaited<ReturnType<typeof startTestRedis>>;

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
