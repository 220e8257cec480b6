import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom, containersOfRun, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { freePort, spawnDaemon, type DaemonProcess } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

// Two daemons on one node (one engine, one Redis). The one running two runs is killed (-9) and
// never comes back; the other was already up, so no start-up settling will look at the
// containers left behind. The periodic reconciler must: adopt them, record their real
// outcomes, and enforce their timeouts from the deadline on their labels (nobody else will
// stop a container whose daemon is gone), then remove them.
const LEASE_MS = 1500;
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, killGrace: 1s }
tasks:
  finishes: { command: [sh, -c, "sleep 6; echo finished under the reconciler"], timeout: 30s }
  overruns: { command: [sh, -c, "echo started; sleep 120"], timeout: 5s }
`;

const dir = mkdtempSync(join(tmpdir(), 'runlet-reconciler-'));
const file = join(dir, 'runlet.yaml');
writeFileSync(file, CONFIG);
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let survivor: TestDaemon | undefined;
let doomed: DaemonProcess | undefined;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  doomed?.child.kill('SIGKILL');
  await survivor?.stop();
  if (survivor) await removeClusterContainers(survivor.identity.clusterId);
  await redis?.stopAndClean();
});

describe('a daemon killed while another daemon of its node is already up', () => {
  it("the reconciler adopts the containers it left: their real outcomes are recorded, and the timeout holds from the containers' labels", async () => {
    const port = await freePort();
    doomed = spawnDaemon(file, {
      REDIS_URL: redis.url,
      RUNLET_PORT: String(port),
      RUNLET_NODE: 'shared',
      RUNLET_STALLED_MS: String(LEASE_MS),
    });
    await doomed.ready;
    const submit = async (task: string) =>
      ((await (await fetch(`http://127.0.0.1:${port}/api/tasks/${task}/runs`, { method: 'POST' })).json()) as { id: string }).id;
    const finishing = await submit('finishes');
    const overrunning = await submit('overruns');
    survivor = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: redis.url, node: 'shared', stalledMs: LEASE_MS });
    const survivorStore = survivor.store;
    await until('both runs running on the doomed daemon', async () => {
      const runs = await Promise.all([finishing, overrunning].map((id) => survivorStore.get(id)));
      return runs.every((r) => r?.status === 'running' && r.daemon !== survivor?.identity.daemonId);
    });
    const overrun = await survivor.store.get(overrunning);

    doomed.child.kill('SIGKILL');
    await new Promise((r) => doomed?.child.once('exit', r));

    const done = await survivor.waitForEnd(finishing, 30_000);
    expect(done.status).toBe('succeeded');
    expect(done.logTail).toContain('finished under the reconciler');
    expect(done.daemon).toBe(survivor.identity.daemonId);

    const stopped = await survivor.waitForEnd(overrunning, 30_000);
    expect(stopped.status).toBe('timed_out');
    // Stopped at its deadline (start + 5 s), give or take a reconciler pass, not left to sleep its 120 s.
    expect(stopped.finishedAt! - overrun!.startedAt!).toBeLessThan(5_000 + 1_000 + 4 * LEASE_MS + 5_000);
    expect(stopped.logTail).toContain('started');
    await until('both containers removed', async () => (await containersOfRun(finishing)) + (await containersOfRun(overrunning)) === 0);
  }, 90_000);
});
