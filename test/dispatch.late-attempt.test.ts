import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunletConfig } from '../src/config/types.js';
import { clusterIdOf } from '../src/dispatch/identity.js';
import { PoolQueues } from '../src/dispatch/queues.js';
import { markLost } from '../src/dispatch/attempt-end.js';
import type { RunContext } from '../src/dispatch/context.js';
import { runJob } from '../src/dispatch/run-job.js';
import { createLogger } from '../src/lib/logger.js';
import { RunletEvents } from '../src/runs/events.js';
import { DockerRuntime } from '../src/runtime/docker.js';
import { configFrom, LogLines, removeClusterContainers } from './helpers/daemon.js';
import { docker, requireImages, testLabels } from './helpers/docker.js';
import { startTestRedis } from './helpers/redis.js';
import { runContextOf } from './helpers/run-context.js';
import { until } from './helpers/until.js';

// Issue 13, "fenced runs": attempt 1's daemon is cut off (here: its end is held back) while
// the run is declared lost and attempt 2 starts on another node. When attempt 1's container
// ends after all, its end must not become the run's: status, output and log tail stay
// attempt 2's. Real Redis, real containers, the real runJob of two daemons.

// Each attempt runs until the test sends it SIGUSR1, so the order of the two ends is the
// test's, not a race of sleeps. (`$RUNLET_ATTEMPT` is unbraced: config interpolation leaves it.)
const CONFIG = `
tasks:
  work:
    image: runlet/busybox:local
    memory: 16m
    timeout: 60s
    retries: { attempts: 2, delay: 1s }
    command:
      - sh
      - -c
      - |
        trap 'echo "attempt $RUNLET_ATTEMPT ends"; echo "{\\"attempt\\": $RUNLET_ATTEMPT}" > /runlet/output.json; [ "$RUNLET_ATTEMPT" = 1 ] && exit 7; exit 0' USR1
        echo "attempt $RUNLET_ATTEMPT runs"
        while true; do sleep 0.1; done
`;

// Shared by both daemons of the test, as one Redis and one engine are.
let server: Awaited<ReturnType<typeof startTestRedis>>, redis: Redis, queues: PoolQueues;
let config: RunletConfig, clusterId: string;

beforeAll(async () => {
  await requireImages('runlet/busybox:local');
  server = await startTestRedis();
  redis = new Redis({ path: server.path });
  queues = new PoolQueues(new Redis({ path: server.path, maxRetriesPerRequest: null }));
  config = configFrom(CONFIG);
  clusterId = await clusterIdOf(redis);
});
afterAll(async () => {
  await queues?.close();
  if (clusterId) await removeClusterContainers(clusterId);
  redis?.disconnect();
  await server?.stopAndClean();
});

/** One daemon's view: its node, its own logs and its own set of runs in progress. */
function daemonOn(node: string): RunContext & { logs: LogLines } {
  const logs = new LogLines();
  const logger = createLogger({ level: 'debug', destination: logs });
  return {
    ...runContextOf({
      config,
      runtime: new DockerRuntime({ logger, labels: testLabels('dispatch.late-attempt') }),
      redis,
      identity: { node, clusterId, daemonId: `${node}-daemon` },
      events: new RunletEvents(),
      logger,
      queues,
    }),
    logs,
  };
}

describe('an attempt that ends after the run moved on to the next one', () => {
  it("is refused and logged: status, output and log tail stay the current attempt's", async () => {
    const a = daemonOn('node-a');
    const b = daemonOn('node-b');
    const { runId } = await a.store.create({ task: 'work', trigger: 'manual', dedupeKey: `work:manual:late` }, { maxAttempts: 2 });
    await a.store.confirmQueued(runId);

    // Attempt 1 runs on node A.
    const first = runJob(a, runId);
    const one = await until('attempt 1 running with its tail', async () => {
      const r = await a.store.get(runId, { withLogs: true });
      return r?.status === 'running' && r.logTail?.includes('attempt 1 runs') && r;
    });

    // Node A is cut off: node B declares the attempt lost (as a redelivered job's watch does), and the
    // retry runs attempt 2 on node B, which cannot see A's container.
    await markLost(b, one, 1, 'the daemon running it on node "node-a" stopped while the run was running');
    expect(await b.store.get(runId)).toMatchObject({ status: 'queued', attempt: 2 });
    const second = runJob(b, runId);
    const two = await until('attempt 2 running with its tail', async () => {
      const r = await b.store.get(runId, { withLogs: true });
      return r?.status === 'running' && r.attempt === 2 && r.logTail?.includes('attempt 2 runs') && r;
    });
    expect(two.containerId).not.toBe(one.containerId);

    // Attempt 1's container ends now, while attempt 2 runs: its process writes its live tail
    // and its end, late.
    await docker.getContainer(one.containerId!).kill({ signal: 'SIGUSR1' });
    await first;
    const during = (await b.store.get(runId, { withLogs: true }))!;
    expect(during).toMatchObject({ status: 'running', attempt: 2, containerId: two.containerId });
    expect(during.logTail).toContain('attempt 2 runs');
    expect(during.logTail).not.toContain('attempt 1');
    expect(during.output).toBeUndefined();
    expect(during.attempts.map((x) => [x.attempt, x.status])).toEqual([[1, 'lost']]);
    expect(a.logs.lines).toContainEqual(
      expect.objectContaining({
        runId,
        attempt: 1,
        msg: 'the end of an attempt the run has moved past, or whose claim another daemon holds (or that was already recorded), was refused',
      }),
    );

    // Attempt 2 ends: its outcome is the run's.
    await docker.getContainer(two.containerId!).kill({ signal: 'SIGUSR1' });
    await second;
    const end = (await b.store.get(runId, { withLogs: true }))!;
    expect(end).toMatchObject({ status: 'succeeded', attempt: 2, exitCode: 0, output: '{"attempt": 2}\n' });
    expect(end.logTail).toContain('attempt 2 ends');
    expect(end.logTail).not.toContain('attempt 1');
    expect(end.attempts.map((x) => [x.attempt, x.status])).toEqual([
      [1, 'lost'],
      [2, 'succeeded'],
    ]);
    expect(end.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'queued', 'starting', 'running', 'succeeded']);
  });
});
