import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { LABEL_CLUSTER, LABEL_RUN, LABEL_TASK, LABEL_WARM } from '../src/runtime/labels.js';
import { docker } from './helpers/docker.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { freePort, spawnDaemon, type DaemonProcess } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

// The promise: a run delivered to a warm instance of a daemon killed with SIGKILL is
// settled, never left running and never run twice. What the design says happens
// (docs/architecture.md, "Warm instances and reuse in dispatch": settling): nothing on a warm
// container names its run (labels are fixed before there is a run), so its process cannot be
// re-attached; the next daemon of the node removes the container and the run, whose record
// has no container of its attempt on the engine, ends `lost` (the task has no retries, so
// it is not run again).
//
// "Ran once" is counted outside the container: its command calls the test's HTTP listener on
// the host (host.docker.internal) before it sleeps, so every start of the command is a hit,
// whoever started it and whether or not its log was kept.

const STALLED_MS = 1500;
const SLEEP_S = 6;
const NODE = 'warm-crash-node';
const LOST_REASONS = [
  // Whichever of the two finds it first: the redelivered job (redelivered.ts) or the reconciler (reconcile.ts).
  'the daemon running it on this node stopped while the run was running',
  'the daemon running it on this node is gone and its container with it',
];

function yaml(port: number): string {
  return `
tasks:
  slow-warm:
    image: runlet/busybox:local
    command: [sh, -c, "wget -q -O /dev/null http://host.docker.internal:${port}/ran/$RUNLET_RUN_ID; echo started; sleep ${SLEEP_S}; echo finished"]
    memory: 16m
    timeout: 60s
    warm: 1
`;
}

/** Counts the command's starts, per run id. */
async function startCounter(): Promise<{ server: Server; port: number; hits: Map<string, number> }> {
  const hits = new Map<string, number>();
  const port = await freePort('0.0.0.0');
  const server = createServer((req, res) => {
    const m = /^\/ran\/(.+)$/.exec(req.url ?? '');
    if (m) hits.set(m[1]!, (hits.get(m[1]!) ?? 0) + 1);
    res.end('ok\n');
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '0.0.0.0', resolve));
  return { server, port, hits };
}

async function warmContainers(clusterId: string): Promise<string[]> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL_CLUSTER}=${clusterId}`, `${LABEL_TASK}=slow-warm`, LABEL_WARM] },
  });
  return list.map((c) => c.Id);
}

describe('a daemon killed (SIGKILL) while a warm instance runs its run', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>> | undefined;
  // Each test starts its own: all are stopped at the end, not only the last one.
  const servers: Awaited<ReturnType<typeof startTestRedis>>[] = [];
  let counter: Awaited<ReturnType<typeof startCounter>> | undefined;
  const procs: DaemonProcess[] = [];
  const daemons: TestDaemon[] = [];
  const clusters = new Set<string>();
  const peeks: Redis[] = [];

  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    for (const d of daemons) await d.stop();
    for (const c of clusters) await removeClusterContainers(c);
    for (const p of peeks) p.disconnect();
    counter?.server.close();
    for (const s of servers) await s.stopAndClean();
  });

  /**
   * A daemon in a child process runs a run on its warm instance; `beside` (if given) starts
   * another daemon of the node once the run is running; then the child is killed with SIGKILL.
   */
  async function killWhileDelivered(beside?: (text: string) => Promise<TestDaemon>) {
    redis = await startTestRedis();
    servers.push(redis);
    counter ??= await startCounter();
    const text = yaml(counter.port);
    const file = join(mkdtempSync(join(tmpdir(), 'runlet-warm-crash-')), 'runlet.yaml');
    writeFileSync(file, text);
    const apiPort = await freePort();
    const proc = spawnDaemon(file, {
      REDIS_URL: redis.url,
      RUNLET_PORT: String(apiPort),
      RUNLET_NODE: NODE,
      RUNLET_STALLED_MS: String(STALLED_MS),
      RUNLET_LOG_LEVEL: 'debug',
    });
    procs.push(proc);
    await proc.ready;
    const peek = new Redis(redis.url);
    peeks.push(peek);
    const clusterId = (await peek.get('runlet:cluster-id')) ?? '';
    expect(clusterId).toBeTruthy();
    clusters.add(clusterId);
    // Ready, not only created: a run that comes while its instance is being made runs cold.
    await until('the warm instance is ready', async () => proc.output().includes('warm instance ready for a run'), 30_000, 100);
    const [instance] = await warmContainers(clusterId);

    const res = await fetch(`http://127.0.0.1:${apiPort}/api/tasks/slow-warm/runs`, { method: 'POST' });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await until('the run is running', async () => (await peek.hget(`runlet:run:${id}`, 'status')) === 'running', 30_000, 100);
    await until('its command has started', async () => counter!.hits.get(id) === 1, 30_000, 100);
    // Delivered to the warm instance, not run cold: the record's container is the instance,
    // and the engine has no container labelled with the run.
    expect(await peek.hget(`runlet:run:${id}`, 'containerId')).toBe(instance);
    expect(await docker.listContainers({ all: true, filters: { label: [`${LABEL_RUN}=${id}`] } })).toHaveLength(0);

    const other = beside ? await beside(text) : undefined;
    if (other) daemons.push(other);
    proc.child.kill('SIGKILL');
    await new Promise((r) => proc.child.once('exit', r));
    return { id, instance: instance!, text, clusterId, other };
  }

  /** What must hold once the run was settled: lost once, never run again, nothing of it left. */
  async function expectSettledOnce(d: TestDaemon, id: string, instance: string, clusterId: string): Promise<void> {
    const run = await d.waitForEnd(id, 60_000);
    expect(run.status).toBe('lost');
    expect(LOST_REASONS).toContain(run.reason);
    expect(run.attempts.map((a) => a.status)).toEqual(['lost']);
    expect(run.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'lost']);
    // Never run again: past the time the command would have taken, the run is still lost, the
    // command started once, and the only container of the task is the live daemon's idle instance.
    await sleep((SLEEP_S + 2) * 1000);
    expect((await d.store.get(id))?.status).toBe('lost');
    expect(counter!.hits.get(id)).toBe(1);
    expect(await docker.listContainers({ all: true, filters: { label: [`${LABEL_RUN}=${id}`] } })).toHaveLength(0);
    const left = await warmContainers(clusterId);
    expect(left).not.toContain(instance);
    expect(left.length).toBeLessThanOrEqual(1);
  }

  it('the next start on the node removes the container at once and ends the run lost; the command ran exactly once', async () => {
    const { id, instance, text, clusterId } = await killWhileDelivered();
    // Its command runs on with no daemon: the container is still running.
    expect((await docker.getContainer(instance).inspect()).State.Running).toBe(true);

    const next = await startTestDaemon({ config: configFrom(text), redisUrl: redis!.url, node: NODE, stalledMs: STALLED_MS });
    daemons.push(next);
    // Removed at start-up, before the new daemon makes its own instance, while the command was still sleeping.
    await expect(docker.getContainer(instance).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await expectSettledOnce(next, id, instance, clusterId);
  });

  it('a daemon of the node already up removes the container within a lease and ends the run lost; the command ran exactly once', async () => {
    const { id, instance, clusterId, other } = await killWhileDelivered((text) =>
      startTestDaemon({ config: configFrom(text), redisUrl: redis!.url, node: NODE, stalledMs: STALLED_MS }),
    );
    // Not at its start (the killed daemon was alive then): by the reconciler, while the command still ran.
    await until(
      'the killed daemon’s warm container is removed',
      async () => !(await docker.listContainers({ all: true })).some((c) => c.Id === instance),
      30_000,
      100,
    );
    await expectSettledOnce(other!, id, instance, clusterId);
  });
});
