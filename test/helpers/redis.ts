import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
