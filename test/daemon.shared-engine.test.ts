import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualRequest } from '../src/triggers/manual.js';
import { configFrom, containersOfRun, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// Two live daemons with the same node name on one engine and one Redis: the one starting
// later must not settle (adopt, record, remove) a container the other is running.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  steady: { command: [sh, -c, "sleep 2; echo finished by its own daemon"] }
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
const daemons: TestDaemon[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  for (const d of daemons) await d.stop();
  if (daemons[0]) await removeClusterContainers(daemons[0].identity.clusterId);
  await redis?.stopAndClean();
});

describe('two daemons on one engine', () => {
  it('a daemon starting up leaves alone the containers of a live daemon', async () => {
    const config = configFrom(CONFIG);
    const first = await startTestDaemon({ config, redisUrl: redis.url, node: 'shared' });
    daemons.push(first);
    const { runId } = await first.submit(manualRequest('steady', undefined));
    await first.events.once('run:started', (e) => e.runId === runId);

    const second = await startTestDaemon({ config, redisUrl: redis.url, node: 'shared' });
    daemons.push(second);
    expect(await containersOfRun(runId)).toBe(1);
    expect(second.logs.lines.some((l) => String(l.msg).includes('left by a previous process'))).toBe(false);

    const rec = await first.waitForEnd(runId);
    expect(rec.status).toBe('succeeded');
    expect(rec.daemon).toBe(first.identity.daemonId);
    expect(rec.logTail).toContain('finished by its own daemon');
  });
});
