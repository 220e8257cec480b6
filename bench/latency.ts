/**
 * Latency of one trivial run, by trigger: the manual API (HTTP), a cron tick and a signed
 * webhook → the task's program running (its first act prints the kernel clock, see
 * lib.ts CLOCK_COMMAND) → `succeeded` recorded. Floor: dockerode create → start → wait →
 * remove of the same container with the same hardening, alternated with runlet's runs.
 *
 *   node dist/bench/latency.js [--runs 50]
 */
import Docker from 'dockerode';
import { fileURLToPath } from 'node:url';
import { signHmac } from '../src/triggers/webhook/signature.js';
import {
  benchDaemon,
  clockFromLog,
  detectCgroup,
  floorRun,
  ms,
  nowMs,
  numFlag,
  ratio,
  removeBenchContainers,
  row,
  stats,
  TASK_LIMITS,
  within,
  type BenchDaemon,
  type FloorRun,
} from './lib.js';

const BENCH = 'latency';
const SECRET = 'bench-secret';

interface Sample {
  readonly toRunning: number;
  readonly total: number;
}

/** Waits for the run's end, then reads its clock line from the run's log. */
async function runletSample(b: BenchDaemon, t0: number, finished: Promise<{ runId: string; status: string }>): Promise<Sample> {
  const e = await within(finished, 60_000, 'a run');
  const done = nowMs();
  if (e.status !== 'succeeded') throw new Error(`run ${e.runId} ended ${e.status}`);
  const log = (await b.daemon.store.logSnapshot(e.runId))?.text ?? '';
  const running = clockFromLog(log);
  return { toRunning: running === undefined ? NaN : running - t0, total: done - t0 };
}

async function manual(b: BenchDaemon): Promise<Sample> {
  const t0 = nowMs();
  const res = await fetch(`${b.daemon.url}/api/tasks/lat/runs`, { method: 'POST' });
  if (res.status !== 202) throw new Error(`manual run answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  return runletSample(
    b,
    t0,
    b.daemon.events.once('run:finished', (e) => e.runId === id, 60_000),
  );
}

let delivery = 0;
async function webhook(b: BenchDaemon): Promise<Sample> {
  const body = JSON.stringify({ n: delivery });
  const t0 = nowMs();
  // The run id is known only from the answer; the run may end before it arrives, so listen first.
  const ended = new Map<string, { runId: string; status: string }>();
  const off = b.daemon.events.on('run:finished', (e) => e.task === 'lat-hook' && ended.set(e.runId, e));
  try {
    const res = await fetch(`${b.daemon.url}/hooks/lat-hook`, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        'x-runlet-delivery': `lat-${delivery++}`,
        'x-runlet-signature': signHmac(SECRET, body),
      },
    });
    if (res.status !== 202) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    const early = ended.get(id);
    return runletSample(b, t0, early ? Promise.resolve(early) : b.daemon.events.once('run:finished', (e) => e.runId === id, 60_000));
  } finally {
    off();
  }
}

export interface LatencyResult {
  readonly lines: string[];
  readonly p50Ratio: number;
  readonly p95Ratio: number;
}

export async function latency(runs: number): Promise<LatencyResult> {
  const docker = new Docker();
  await detectCgroup(docker);
  await removeBenchContainers(docker, BENCH);
  // The floor runs alternated with each phase: the hooks phase and the cron phase run minutes
  // apart, and machine load may differ between them, so each trigger is held to its own.
  const floorHooks: FloorRun[] = [];
  const floorCron: FloorRun[] = [];
  const byTrigger: Record<'manual' | 'webhook' | 'cron', Sample[]> = { manual: [], webhook: [], cron: [] };

  // Manual and webhook on one daemon; alternated with floor runs.
  const hooks = await benchDaemon(
    `tasks:\n  lat: { ${TASK_LIMITS} }\n  lat-hook: { ${TASK_LIMITS}, webhook: { secret: ${SECRET}, signature: hmac-sha256 } }\n`,
    BENCH,
    docker,
  );
  try {
    // Warm-up (image cache, connections, JIT), not counted.
    await floorRun(docker, BENCH);
    await manual(hooks);
    await webhook(hooks);
    for (let i = 0; i < runs; i++) {
      floorHooks.push(await floorRun(docker, BENCH));
      byTrigger.manual.push(await manual(hooks));
      floorHooks.push(await floorRun(docker, BENCH));
      byTrigger.webhook.push(await webhook(hooks));
    }
  } finally {
    await hooks.stop();
  }

  // Cron on a daemon of its own (its ticks would otherwise land among the runs above):
  // a tick every 3 s; after each of its runs ends, one floor run (done well before the next tick).
  const cron = await benchDaemon(`tasks:\n  lat-cron: { ${TASK_LIMITS}, schedule: "*/3 * * * * *", overlap: skip }\n`, BENCH, docker);
  const timerLate: number[] = [];
  let skippedTicks = 0;
  try {
    let skipFirst = true;
    while (byTrigger.cron.length < runs) {
      const e = await within(
        cron.daemon.events.once('run:finished', (x) => x.task === 'lat-cron', 10_000),
        15_000,
        'a cron run',
      );
      const rec = await cron.daemon.store.get(e.runId);
      const done = nowMs();
      // A tick that came while the previous run still ran (a slow start under load) is
      // skipped by overlap: skip; it started nothing, so there is nothing to time.
      if (e.status === 'skipped') {
        skippedTicks++;
        continue;
      }
      if (skipFirst) {
        skipFirst = false; // the first tick after start-up warms up
        continue;
      }
      if (e.status !== 'succeeded' || rec?.scheduledAt === undefined) throw new Error(`cron run ${e.runId} ended ${e.status}`);
      const running = clockFromLog((await cron.daemon.store.logSnapshot(e.runId))?.text ?? '');
      timerLate.push(rec.createdAt - rec.scheduledAt);
      byTrigger.cron.push({ toRunning: running === undefined ? NaN : running - rec.scheduledAt, total: done - rec.scheduledAt });
      floorCron.push(await floorRun(docker, BENCH));
    }
  } finally {
    await cron.stop();
  }
  await removeBenchContainers(docker, BENCH);

  const summary = (xs: readonly FloorRun[]) => ({ running: stats(xs.map((x) => x.toRunning)), total: stats(xs.map((x) => x.total)) });
  const floors = { hooks: summary(floorHooks), cron: summary(floorCron) };
  const lines = [
    `## latency: trigger → program running → succeeded recorded (${runs} runs per trigger; floor runs alternated: ${floorHooks.length} beside manual and webhook, ${floorCron.length} beside cron)`,
    '',
    row(['', 'to running p50', 'p95', 'max', 'to succeeded p50', 'p95', 'max', 'ratio p50', 'ratio p95']),
    row(['---', '---', '---', '---', '---', '---', '---', '---', '---']),
  ];
  const floorRow = (name: string, f: ReturnType<typeof summary>) =>
    row([name, ms(f.running.p50), ms(f.running.p95), ms(f.running.max), ms(f.total.p50), ms(f.total.p95), ms(f.total.max), '', '']);
  let worst50 = 0;
  let worst95 = 0;
  for (const [name, xs] of Object.entries(byTrigger)) {
    const f = name === 'cron' ? floors.cron : floors.hooks;
    if (name === 'manual') lines.push(floorRow('floor (beside manual and webhook)', f));
    if (name === 'cron') lines.push(floorRow('floor (beside cron)', f));
    const r = stats(xs.map((x) => x.toRunning));
    const t = stats(xs.map((x) => x.total));
    worst50 = Math.max(worst50, t.p50 / f.total.p50);
    worst95 = Math.max(worst95, t.p95 / f.total.p95);
    lines.push(
      row([
        `runlet ${name}`,
        ms(r.p50),
        ms(r.p95),
        ms(r.max),
        ms(t.p50),
        ms(t.p95),
        ms(t.max),
        ratio(t.p50, f.total.p50),
        ratio(t.p95, f.total.p95),
      ]),
    );
  }
  lines.push(
    '',
    `t0: the floor's create request; manual: before the POST; webhook: before the POST; cron: the tick's scheduled time. ` +
      `"to running": the program's own CLOCK_REALTIME reading (busybox adjtimex, ns) − t0. Ratios: to succeeded, runlet / floor.`,
    `cron: the run record's createdAt − scheduled time (the timer's part of "to running"): p50 ${ms(stats(timerLate).p50)}, max ${ms(stats(timerLate).max)}; ${skippedTicks} ticks skipped (the run before still ran).`,
    `worst ratio over triggers: p50 ${worst50.toFixed(2)}× (target ≤ 1.10×), p95 ${worst95.toFixed(2)}× (target ≤ 1.25×)`,
  );
  return { lines, p50Ratio: worst50, p95Ratio: worst95 };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  latency(numFlag('runs', 50)).then(
    (r) => {
      console.log(r.lines.join('\n'));
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
