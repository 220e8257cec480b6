import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/runs/types.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { BUSYBOX } from './helpers/docker.js';
import { until } from './helpers/until.js';

// Two hosts on one Redis, each a daemon process on an engine of its own, both firing a
// per-second schedule. Node A is restarted 20 times in about 30 s: a graceful stop (SIGTERM)
// and a start at once, and every third time a crash (SIGKILL), sometimes before it even
// finished starting. B runs throughout, so no tick may be missed, and however A comes and
// goes (its timers stopped mid-tick, its catch-up at every start reading a marker B keeps
// moving), no tick may run twice.
//
// B is also made late to claim each tick, as a loaded host is: it is paused (SIGSTOP) from
// just before each second until 0.4 s after it. A daemon whose timers start in that moment
// finds the current tick not yet claimed; it must not take it for one "missed while no
// daemon ran" (a `skipped` record with catchup: 0s) while B is about to run it.
//
// "One scheduler per task": runlet has no scheduler job to duplicate (BullMQ's job
// schedulers could be duplicated by concurrent upserts, #2876/#3381); every daemon's timer
// proposes each tick and the claim in Redis decides. Two schedulers would show as a tick
// with two runs, or as two processes each saying they created a tick's run. Both are
// observed: the run records, and every process's own log line for each tick it created
// (debug level: "cron tick queued", created: true, and the catch-up's line at start).
const RESTARTS = 20;
const CONFIG = `
defaults: { image: ${BUSYBOX}, memory: 16m, timeout: 30s }
# Every run of the window is counted: none may be trimmed (100 by default) on a slow machine.
retention: { runs: 1000 }
tasks:
  every-second:
    schedule: "* * * * * *"
    concurrency: 6
    command: ["true"]
`;

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({
    yamlText: CONFIG,
    engineNames: ['d123', 'f12'],
    images: [BUSYBOX],
    // Runs a killed A held are taken over (or found lost) after 5 s, not 30, so the runs of the window end within the file's time.
    env: { RUNLET_LOG_LEVEL: 'debug', RUNLET_STALLED_MS: '5000' },
  });
  await Promise.all(cluster.nodes.map((n) => n.start()));
  await until('the cluster id', () => cluster.clusterId(), 10_000);
  cluster.sampler.start(500);
}, 180_000);

afterAll(async () => {
  await cluster?.teardown();
}, 180_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const post = async (url: string) => (await fetch(url, { method: 'POST' })).status;

describe('20 restarts of a daemon in 30 s while another runs', () => {
  it('fires every tick once: none missing, none twice, and each created by one process', async () => {
    const [a, b] = cluster.nodes;
    const startedAt = Date.now();
    let jittering = true;
    const jitter = (async () => {
      while (jittering) {
        const now = Date.now();
        const pauseAt = Math.ceil((now + 100) / 1000) * 1000 - 50;
        await sleep(pauseAt - now);
        if (!jittering) break;
        b.signal('SIGSTOP');
        await sleep(400);
        b.signal('SIGCONT');
      }
    })();
    const restarts = { graceful: 0, killed: 0, cameUp: 0 };
    for (let i = 0; i < RESTARTS; i++) {
      // Every third stop is a crash; the others graceful (SIGTERM: triggers stop, then runs
      // in flight end). A process still starting takes either as a crash.
      if (i % 3 === 2) {
        await a.stop('SIGKILL');
        restarts.killed++;
      } else {
        await a.stop('SIGTERM');
        restarts.graceful++;
      }
      const p = await a.launch();
      if (i % 2 === 0 && Date.now() - startedAt < 30_000) {
        // Up and firing for a moment. A loaded machine takes seconds to start a process; past
        // 30 s the rest are crash-loop restarts, so the file stays within its time.
        await Promise.race([p.ready.catch(() => undefined), sleep(15_000)]);
        await sleep(Math.random() * 500);
      } else {
        // The next stop comes on a cadence, whether or not it finished starting: a crash loop.
        await sleep(1_000 + Math.random() * 1_000);
      }
      if (p.output().includes('runlet is running')) restarts.cameUp++;
    }
    await until('A up after its last restart', () => a.process!.ready.then(() => true), 30_000);
    jittering = false;
    await jitter;
    b.signal('SIGCONT');
    const restartsMs = Date.now() - startedAt;
    // A few more ticks with both up, then stop firing cluster-wide (later ticks are recorded
    // `skipped`) and let the runs end.
    await sleep(2_000);
    const pausedAt = Date.now();
    expect(await post(`${await b.url()}/api/tasks/every-second/pause`)).toBe(200);
    const open = await until(
      'the runs of the window to end',
      async () => {
        const o = (await cluster.store.list({ task: 'every-second', limit: 1000 })).filter((r) =>
          ['queued', 'starting', 'running'].includes(r.status),
        );
        return o.length === 0 || Date.now() - pausedAt > 20_000 ? o : undefined;
      },
      30_000,
      500,
    );

    const all = await cluster.store.list({ task: 'every-second', limit: 1000 });
    const fired = all.filter((r) => r.scheduledAt! >= startedAt - 1_000 && r.scheduledAt! <= pausedAt);
    const perTick = new Map<number, RunRecord[]>();
    for (const r of fired) perTick.set(r.scheduledAt!, [...(perTick.get(r.scheduledAt!) ?? []), r]);
    const ticks = [...perTick.keys()].sort((x, y) => x - y);

    // None twice.
    const twice = [...perTick].filter(([, rs]) => rs.length > 1).map(([t, rs]) => `${new Date(t).toISOString()}: ${rs.map((r) => r.id)}`);
    expect(twice).toEqual([]);
    // None missing: every second from the first tick to the last has a run, and none was
    // turned into a `skipped` record (B was up: no tick was missed "while no daemon ran").
    const missing: string[] = [];
    for (let t = ticks[0]; t <= ticks[ticks.length - 1]; t += 1000) if (!perTick.has(t)) missing.push(new Date(t).toISOString());
    expect(missing).toEqual([]);
    const skipped = fired.filter((r) => r.status === 'skipped').map((r) => `${new Date(r.scheduledAt!).toISOString()}: ${r.reason}`);
    expect(skipped).toEqual([]);
    expect(ticks[0]).toBeLessThanOrEqual(startedAt + 1_000);
    expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(pausedAt - 2_000);

    // One creator per tick, in the daemons' own words: no two processes (A's incarnations
    // or B) each created a run for one tick. A process killed right after its claim may not
    // have said so, hence at most one.
    const creators = new Map<string, string[]>();
    for (const node of cluster.nodes) {
      let incarnation = 0;
      for (const line of node.logLines()) {
        if (line.msg === 'runlet is running') incarnation++;
        const tick = line.msg === 'cron tick queued' ? line.tick : String(line.msg).startsWith('catching up') ? line.latest : undefined;
        if (typeof tick !== 'string' || line.created !== true) continue;
        creators.set(tick, [...(creators.get(tick) ?? []), `${node.node}#${incarnation} ${line.runId}`]);
      }
    }
    expect([...creators].filter(([, by]) => by.length > 1)).toEqual([]);
    for (const [tick, [by]] of creators) {
      const run = perTick.get(Date.parse(tick))?.[0];
      if (run) expect(by.endsWith(` ${run.id}`), `${tick} created by ${by}, recorded as ${run.id}`).toBe(true);
    }
    expect(creators.size).toBeGreaterThan(ticks.length / 2);

    const outcomes = new Map<string, number>();
    for (const r of fired) outcomes.set(r.status, (outcomes.get(r.status) ?? 0) + 1);
    const byNode = new Map<string, number>();
    for (const [, by] of creators) byNode.set(by[0].split('#')[0], (byNode.get(by[0].split('#')[0]) ?? 0) + 1);
    console.log(
      `${RESTARTS} restarts of A in ${(restartsMs / 1000).toFixed(1)} s (${JSON.stringify(restarts)}); ${ticks.length} ticks; ` +
        `outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; ticks created by ${JSON.stringify(Object.fromEntries(byNode))}; ` +
        `still open after 20 s: ${open.map((r) => `${r.id} ${r.status}`).join(', ') || 'none'}; ` +
        `samples with two containers of one run: ${cluster.sampler.overlaps().length}`,
    );
  }, 170_000);
});
