import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualRequest } from '../src/triggers/manual.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// A node whose pool is full does not take the job: it stays queued for a node with room.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
pools:
  heavy: { concurrency: 1 }
tasks:
  crunch: { pool: heavy, concurrency: 5, command: [sh, -c, "sleep 3; echo crunched"] }
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
const daemons: TestDaemon[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  const config = configFrom(CONFIG);
  daemons.push(await startTestDaemon({ config, redisUrl: redis.url, node: 'room-a' }));
  daemons.push(await startTestDaemon({ config, redisUrl: redis.url, node: 'room-b' }));
});
afterAll(async () => {
  for (const d of daemons) await d.stop();
  if (daemons[0]) await removeClusterContainers(daemons[0].identity.clusterId);
  await redis?.stopAndClean();
});

describe('admission across nodes', () => {
  it('a second run goes to the node with room instead of waiting behind the first', async () => {
    const [a] = daemons;
    const first = await a.submit(manualRequest('crunch', undefined));
    await Promise.race(daemons.map((d) => d.events.once('run:started', (e) => e.runId === first.runId)));
    const second = await a.submit(manualRequest('crunch', undefined));
    const [r1, r2] = await Promise.all([a.waitForEnd(first.runId), a.waitForEnd(second.runId)]);
    expect([r1.status, r2.status]).toEqual(['succeeded', 'succeeded']);
    expect(r2.node).not.toBe(r1.node);
    // They ran side by side, each node within its pool of one.
    expect(r2.startedAt!).toBeLessThan(r1.finishedAt!);
  });
});
