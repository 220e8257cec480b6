import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../src/runs/store.js';
import { isTerminal, type RunRecord } from '../src/runs/types.js';
import { LABEL_RUN } from '../src/runtime/labels.js';
import { engineHost, startCluster, type Cluster, type ClusterNode } from './helpers/cluster.js';
import { BUSYBOX } from './helpers/docker.js';
import { until } from './helpers/until.js';

// Two hosts (each a daemon on a Docker engine of its own), one Redis. The node running a run
// is restarted the way a deploy does it (SIGTERM, then started again at once), or dies with its
// engine. The samples of every engine's running containers must never show two containers of
// one run at once, and the run must end with the outcome of the attempt that really ran.
const LEASE_MS = 2000;
const CONFIG = `
defaults: { image: ${BUSYBOX}, memory: 16m, killGrace: 1s }
tasks:
  deploy-sleeper:
    command: [sh, -c, 'echo "attempt $RUNLET_ATTEMPT on $RUNLET_NODE"; sleep 40; echo "attempt $RUNLET_ATTEMPT done"']
    timeout: 90s
    retries: { attempts: 2, delay: 1s }
  host-loss:
    command: [sh, -c, 'echo "attempt $RUNLET_ATTEMPT on $RUNLET_NODE"; sleep 6; echo "attempt $RUNLET_ATTEMPT done"']
    timeout: 12s
    retries: { attempts: 2, delay: 1s }
`;

let cluster: Cluster;
let store: RunStore;

beforeAll(async () => {
  cluster = await startCluster({
    yamlText: CONFIG,
    engineNames: ['a', 'a1'],
    images: [BUSYBOX],
    env: { RUNLET_STALLED_MS: String(LEASE_MS) },
  });
  store = new RunStore(cluster.redisClient);
  await Promise.all(cluster.nodes.map((n) => n.start()));
  cluster.sampler.start(500);
}, 180_000);

afterAll(async () => {
  await cluster?.teardown();
}, 180_000);

async function submit(task: string): Promise<string> {
  const res = await fetch(`${await cluster.nodes[0].url()}/api/tasks/${task}/runs`, { method: 'POST' });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

const nodeNamed = (name: string | undefined): ClusterNode => {
  const n = cluster.nodes.find((x) => x.node === name);
  if (!n) throw new Error(`no node ${name}`);
  return n;
};

async function ended(runId: string, ms: number): Promise<RunRecord> {
  return until(
    `run ${runId} to end`,
    async () => {
      const r = await store.get(runId, { withLogs: true });
      return r && isTerminal(r.status) && r.status !== 'lost' ? r : undefined;
    },
    ms,
    250,
  );
}

async function leftOnEngines(runId: string): Promise<string[]> {
  const left: string[] = [];
  for (const e of cluster.engines)
    for (const c of await e.docker.listContainers({ all: true, filters: { label: [`${LABEL_RUN}=${runId}`] } }).catch(() => []))
      left.push(`${e.name}: ${c.Names[0]} ${c.State}`);
  return left;
}

describe('a rolling restart of the node running a run (SIGTERM, then start again at once)', () => {
  it('its successor adopts the container: the run ends once, as attempt 1, never beside a second container', async () => {
    const runId = await submit('deploy-sleeper');
    const running = await until('the run to be running', async () => {
      const r = await store.get(runId);
      return r?.status === 'running' && r;
    });
    const holder = nodeNamed(running.node);
    // A deploy: the daemon is told to stop (it waits its grace, 10 s, then leaves the run to
    // the next start), and the new one starts as soon as the old has exited.
    await holder.stop('SIGTERM');
    expect(holder.output()).toContain('runs still in progress are left to the next start');
    await holder.start();

    const rec = await ended(runId, 120_000);
    expect(cluster.sampler.overlaps()).toEqual([]);
    expect(rec.status).toBe('succeeded');
    expect(rec.attempt ?? 1).toBe(1);
    expect(rec.node).toBe(holder.node);
    expect(rec.logTail).toContain('attempt 1 done');
    expect(rec.attempts.map((a) => [a.attempt, a.status])).toEqual([[1, 'succeeded']]);
    expect(holder.output()).toContain('adopting a running container left by a previous process');
    await until('no container of the run on any engine', async () => (await leftOnEngines(runId)).length === 0, 20_000);
  }, 180_000);
});

describe('a node and its engine gone at once (kill -9 of the daemon, the engine down), the host back later', () => {
  it("the other node retries only after the lost attempt's deadline; the leftover is removed when the host is back", async () => {
    const runId = await submit('host-loss');
    const running = await until('the run to be running', async () => {
      const r = await store.get(runId);
      return r?.status === 'running' && r;
    });
    const lostNode = nodeNamed(running.node);
    const deadline = running.deadline as number;
    expect(deadline).toBeGreaterThan(running.startedAt as number);
    await lostNode.stop('SIGKILL');
    await engineHost('down', lostNode.engine.name);

    const rec = await ended(runId, 90_000);
    const other = cluster.nodes.find((n) => n !== lostNode) as ClusterNode;
    expect(rec.status).toBe('succeeded');
    expect(rec.attempt).toBe(2);
    expect(rec.node).toBe(other.node);
    expect(rec.attempts.map((a) => [a.attempt, a.status])).toEqual([
      [1, 'lost'],
      [2, 'succeeded'],
    ]);
    // The host could still have been running attempt 1 (a frozen or cut-off node looks the
    // same from here): attempt 2 started only once attempt 1's container was surely stopped.
    expect(rec.attempts[1].startedAt).toBeGreaterThanOrEqual(deadline);
    expect(cluster.sampler.overlaps()).toEqual([]);

    // The host comes back: its engine still has attempt 1's container (stopped with the
    // engine), which the node's daemon removes, unrecorded (the run has moved past it).
    await engineHost('up', lostNode.engine.name);
    await lostNode.start();
    await until('no container of the run on any engine', async () => (await leftOnEngines(runId)).length === 0, 30_000);
    const after = await store.get(runId);
    expect(after?.status).toBe('succeeded');
    expect(after?.attempts).toHaveLength(2);
  }, 150_000);
});
