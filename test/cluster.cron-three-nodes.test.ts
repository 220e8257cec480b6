import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/runs/types.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { BUSYBOX } from './helpers/docker.js';
import { until } from './helpers/until.js';

// Three hosts (three daemon processes, each on a Docker engine of its own, one Redis) all run
// the same per-second schedule for 30 s. Every daemon fires every tick; the claim in Redis
// must turn each scheduled second into exactly one run, with none missing between the first
// and the last, and each run's container must run once, on one host. The container sleeps a
// second so the 500 ms sampler sees every run at least once and would see a second container.
const WINDOW_MS = 30_000;
const CONFIG = `
defaults: { image: ${BUSYBOX}, memory: 16m, timeout: 30s }
# Every run of the window is counted: none may be trimmed (100 by default) on a slow machine.
retention: { runs: 1000 }
tasks:
  every-second:
    schedule: "* * * * * *"
    # Runs overlap a little (a second each, one a second): room for them, so none waits.
    concurrency: 6
    command: [sh, -c, 'sleep 1']
`;

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ yamlText: CONFIG, engineNames: ['d', 'd1', 'd12'], images: [BUSYBOX] });
  await Promise.all(cluster.nodes.map((n) => n.start()));
  await until('the cluster id', () => cluster.clusterId(), 10_000);
  cluster.sampler.start(500);
}, 180_000);

afterAll(async () => {
  await cluster?.teardown();
}, 180_000);

const post = async (url: string) => (await fetch(url, { method: 'POST' })).status;

describe('three daemons on three engines firing a per-second cron for 30 s', () => {
  it('fires each second once, none missing, and each run runs once on one host and succeeds', async () => {
    const store = cluster.store;
    const startedAt = Date.now();
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    // Stop firing cluster-wide (ticks from here on are recorded `skipped`), let the runs in
    // flight end, then stop the daemons: every tick of the window gets to run.
    const pausedAt = Date.now();
    expect(await post(`${await cluster.nodes[0].url()}/api/tasks/every-second/pause`)).toBe(200);
    await until(
      'every run of the window to end',
      async () => {
        const open = (await store.list({ task: 'every-second', limit: 1000 })).filter((r) =>
          ['queued', 'starting', 'running'].includes(r.status),
        );
        return open.length === 0;
      },
      60_000,
      500,
    );
    await cluster.sampler.stop();
    await Promise.all(cluster.nodes.map((n) => n.stop('SIGTERM')));

    const all = await store.list({ task: 'every-second', limit: 1000 });
    // A tick scheduled after the pause is a `skipped` record; the window is what came before.
    const fired = all.filter((r) => r.scheduledAt! <= pausedAt).sort((a, b) => a.scheduledAt! - b.scheduledAt!);
    expect(fired.every((r) => r.trigger === 'cron')).toBe(true);

    // Each scheduled second once: no second has two runs ...
    const perTick = new Map<number, RunRecord[]>();
    for (const r of fired) perTick.set(r.scheduledAt!, [...(perTick.get(r.scheduledAt!) ?? []), r]);
    const twice = [...perTick].filter(([, rs]) => rs.length > 1).map(([t, rs]) => `${new Date(t).toISOString()}: ${rs.map((r) => r.id)}`);
    expect(twice).toEqual([]);
    // ... and none is missing between the first tick and the last. The start-up edge: the
    // daemons were running when the window opened, so its first second fired (a tick due
    // before a daemon's timers started is not one it fires).
    const ticks = [...perTick.keys()].sort((a, b) => a - b);
    const missing: string[] = [];
    for (let t = ticks[0]; t <= ticks[ticks.length - 1]; t += 1000) if (!perTick.has(t)) missing.push(new Date(t).toISOString());
    expect(missing).toEqual([]);
    expect(ticks[0]).toBeLessThanOrEqual(startedAt + 1_000);
    expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(pausedAt - 2_000);
    expect(ticks.length).toBeGreaterThanOrEqual(WINDOW_MS / 1000);

    // Every run ran once, as attempt 1, and succeeded.
    const notOnce = fired.filter((r) => r.status !== 'succeeded' || r.attempt !== 1 || r.attempts.length !== 1);
    expect(notOnce.map((r) => `${r.id} ${r.status} attempt ${r.attempt} (${r.attempts.length} ended): ${r.reason ?? ''}`)).toEqual([]);

    // The engines' view: never two containers of one run at once, and each run's containers
    // seen on one engine only, the one its record names.
    expect(cluster.sampler.overlaps()).toEqual([]);
    const seen = cluster.sampler.seen();
    const elsewhere: string[] = [];
    for (const r of fired) {
      const where = seen.get(r.id);
      if (!where) continue; // ended between two samples
      if (where.size !== 1 || ![...where][0].startsWith(`${r.node!.replace(/^node-/, '')}/`))
        elsewhere.push(`${r.id} (record: ${r.node}) seen on ${[...where].join(', ')}`);
    }
    expect(elsewhere).toEqual([]);
    // A second's sleep against a 500 ms sampler: most runs were seen (the samples work).
    expect(fired.filter((r) => seen.has(r.id)).length).toBeGreaterThan(fired.length / 2);
    // Three hosts shared the work (each daemon's worker takes jobs from the one queue).
    const byNode = new Map<string, number>();
    for (const r of fired) byNode.set(r.node!, (byNode.get(r.node!) ?? 0) + 1);
    console.log(`runs per node: ${JSON.stringify(Object.fromEntries(byNode))}; ${fired.length} ticks`);
  }, 150_000);
});
