import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { manualRequest } from '../src/triggers/manual.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';

// Without REDIS_URL the daemon starts its own redis-server (unix socket, append-only file
// in the data dir) and stops it on shutdown; run history survives a restart.
const CONFIG = `
tasks:
  note: { image: runlet/busybox:local, command: [echo, remembered], memory: 16m }
`;
const dataDir = mkdtempSync(join(tmpdir(), 'runlet-embedded-'));
let daemon: TestDaemon | undefined;

afterAll(async () => {
  if (daemon) {
    await daemon.stop();
    await removeClusterContainers(daemon.identity.clusterId);
  }
});

describe('embedded Redis', () => {
  it('is started in the data dir, stopped with the daemon, and keeps run history across restarts', async () => {
    const config = configFrom(CONFIG);
    daemon = await startTestDaemon({ config, dataDir, redisUrl: undefined });
    expect(daemon.redisTarget).toEqual({ path: join(dataDir, 'redis.sock') });
    const { runId } = await daemon.submit(manualRequest('note', undefined));
    expect((await daemon.waitForEnd(runId)).status).toBe('succeeded');
    const clusterId = daemon.identity.clusterId;
    await daemon.stop();
    daemon = undefined;
    expect(existsSync(join(dataDir, 'appendonlydir')) || existsSync(join(dataDir, 'appendonly.aof'))).toBe(true);
    // The server went away with the daemon: nothing answers on the socket any more.
    expect(existsSync(join(dataDir, 'redis.sock'))).toBe(false);

    daemon = await startTestDaemon({ config, dataDir, redisUrl: undefined });
    expect(daemon.identity.clusterId).toBe(clusterId);
    const again = await daemon.store.get(runId, { withLogs: true });
    expect(again?.status).toBe('succeeded');
    expect(again?.logTail).toContain('remembered');
  });
});
