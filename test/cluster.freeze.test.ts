import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEPOSED } from '../src/dispatch/run-job.js';
import { RunStore } from '../src/runs/store.js';
import { isTerminal, type RunRecord } from '../src/runs/types.js';
import { LABEL_RUN } from '../src/runtime/labels.js';
import { startCluster, type Cluster, type ClusterNode } from './helpers/cluster.js';
import { BUSYBOX } from './helpers/docker.js';
import { until } from './helpers/until.js';

// Two hosts (each a daemon on a Docker engine of its own), one Redis. The daemon running a
// run is frozen (SIGSTOP) past its job's lock and its heartbeat, so the other node takes it for
// dead, while its container goes on running on its engine: from the other node, a frozen host
// and a dead one look the same. Then it thaws (SIGCONT). Every engine's running containers are
// sampled every 500 ms: never two containers of the run at once.
const LEASE_MS = 2000;
// Longer than the heartbeat lasted before (15 s) plus a stalled check, so the old code takes
// the node for dead too (and, there, started attempt 2 at once beside attempt 1).
const FREEZE_MS = 22_000;
const CONFIG = `
defaults: { image: ${BUSYBOX}, memory: 16m, killGrace: 1s }
tasks:
  frozen-sleeper:
    command: [sh, -c, 'echo "attempt $RUNLET_ATTEMPT on $RUNLET_NODE"; sleep 35; echo "attempt $RUNLET_ATTEMPT done"']
    timeout: 40s
    retries: { attempts: 2, delay: 1s }
`;

let cluster: Cluster;
let store: RunStore;

beforeAll(async () => {
  cluster = await startCluster({
    yamlText: CONFIG,
    engineNames: ['a12', 'e12345'],
    images: [BUSYBOX],
    env: { RUNLET_STALLED_MS: String(LEASE_MS) },
  });
  store = new RunStore(cluster.redisClient);
  await Promise.all(cluster.nodes.map((n) => n.start()));
  cluster.sampler.start(500);
}, 180_000);

afterAll(async () => {
  for (const n of cluster?.nodes ?? []) n.signal('SIGCONT');
  await cluster?.teardown();
}, 180_000);

describe('the node running a run frozen (SIGSTOP) past its lock and heartbeat, then thawed (SIGCONT)', () => {
  it("never runs two containers of the run: the retry waits for the frozen attempt's deadline, and the thawed node stops its own", async () => {
    const res = await fetch(`${await cluster.nodes[0].url()}/api/tasks/frozen-sleeper/runs`, { method: 'POST' });
    const runId = ((await res.json()) as { id: string }).id;
    const running = await until('the run to be running', async () => {
      const r = await store.get(runId);
      return r?.status === 'running' && r;
    });
    const frozen = cluster.nodes.find((n) => n.node === running.node) as ClusterNode;

    frozen.signal('SIGSTOP');
    // The other node takes the frozen one for dead: attempt 1 is declared lost, and its retry
    // is set for after attempt 1's deadline, as its container may still run (it does).
    const lost = await until(
      'attempt 1 to be declared lost by the other node',
      async () => {
        const r = await store.get(runId);
        return r && r.attempts.length > 0 && r;
      },
      FREEZE_MS,
      200,
    );
    expect(lost.attempts[0]).toMatchObject({ attempt: 1, status: 'lost' });
    expect(lost.status).toBe('queued');
    expect(lost.retryAt).toBeGreaterThanOrEqual(running.deadline as number);
    await new Promise((r) => setTimeout(r, Math.max(0, running.startedAt! + FREEZE_MS - Date.now())));
    frozen.signal('SIGCONT');

    const rec: RunRecord = await until(
      'the run to end',
      async () => {
        const r = await store.get(runId, { withLogs: true });
        return r && isTerminal(r.status) && r;
      },
      120_000,
      250,
    );
    expect(cluster.sampler.overlaps()).toEqual([]);
    expect(rec.status).toBe('succeeded');
    expect(rec.attempt).toBe(2);
    expect(rec.attempts.map((a) => [a.attempt, a.status])).toEqual([
      [1, 'lost'],
      [2, 'succeeded'],
    ]);
    expect(rec.attempts[1].startedAt).toBeGreaterThanOrEqual(running.deadline as number);
    // The outcome, output and log are attempt 2's: the thawed node's late writes were refused.
    expect(rec.logTail).toContain('attempt 2 done');
    expect(rec.logTail).not.toContain('attempt 1');
    // Thawed, the node found its claim gone and stopped its container, before it would have ended by itself.
    await until('the thawed node to say it stopped its container', () => frozen.output().includes(DEPOSED), 10_000);
    const seenRunning = cluster.sampler.samples.filter((s) => s.runs.get(runId)?.some((c) => c.attempt === 1)).map((s) => s.at);
    expect(Math.max(...seenRunning)).toBeLessThan((running.startedAt as number) + 35_000);
    for (const e of cluster.engines)
      expect(await e.docker.listContainers({ all: true, filters: { label: [`${LABEL_RUN}=${runId}`] } })).toEqual([]);
  }, 200_000);
});
