/**
 * Throughput: trivial runs per second at concurrency 1, 2, 4, 8, 16, against raw dockerode
 * doing the same containers with the same number of workers. For each level: a raw batch,
 * then a runlet batch (N manual runs submitted at once to a task and pool of that
 * concurrency). CPU per run of dockerd (/proc/<pid>/stat), of this process and of the whole
 * machine tells where the knee comes from.
 *
 *   node dist/bench/throughput.js [--runs 200] [--levels 1,2,4,8,16]
 */
import Docker from 'dockerode';
import { fileURLToPath } from 'node:url';
import { manualRequest } from '../src/triggers/manual.js';
import {
  benchDaemon,
  cpuDuring,
  detectCgroup,
  floorCreateOptions,
  listFlag,
  ms,
  stats,
  numFlag,
  removeBenchContainers,
  row,
  within,
  type BenchDaemon,
} from './lib.js';

const BENCH = 'throughput';

/** Per-run phases, host clock: created+started, and started → ended and removed. */
interface Phases {
  readonly toStarted: number[];
  readonly startedToDone: number[];
  /** Concurrency 1 only: one run's end → the next run's container started. */
  readonly handoff: number[];
}

async function rawBatch(docker: Docker, runs: number, concurrency: number, phases?: Phases): Promise<void> {
  let next = 0;
  let lastDone: number | undefined;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < runs) {
        next++;
        const t0 = performance.now();
        const c = await docker.createContainer(floorCreateOptions(BENCH, ['true']));
        await c.start();
        const t1 = performance.now();
        await c.wait();
        await c.inspect();
        await c.remove({ force: true, v: true });
        const t2 = performance.now();
        phases?.toStarted.push(t1 - t0);
        phases?.startedToDone.push(t2 - t1);
        if (concurrency === 1 && lastDone !== undefined) phases?.handoff.push(t1 - lastDone);
        lastDone = t2;
      }
    }),
  );
}

async function runletBatch(b: BenchDaemon, task: string, runs: number, phases?: Phases, concurrency = 0): Promise<void> {
  let left = runs;
  let failed = 0;
  const startedAt = new Map<string, number>();
  let lastDone: number | undefined;
  const offStarted = b.daemon.events.on('run:started', (e) => {
    if (e.task !== task) return;
    const now = performance.now();
    startedAt.set(e.runId, now);
    if (concurrency === 1 && lastDone !== undefined) phases?.handoff.push(now - lastDone);
  });
  const all = new Promise<void>((resolve) => {
    const off = b.daemon.events.on('run:finished', (e) => {
      if (e.task !== task) return;
      const now = performance.now();
      const s = startedAt.get(e.runId);
      if (s !== undefined) phases?.startedToDone.push(now - s);
      lastDone = now;
      if (e.status !== 'succeeded') failed++;
      if (--left === 0) {
        off();
        resolve();
      }
    });
  });
  for (let i = 0; i < runs; i++) await b.daemon.submit(manualRequest(task, undefined));
  await within(all, 30 * 60_000, `${runs} runs of ${task}`).finally(offStarted);
  if (failed) throw new Error(`${failed} of ${runs} runs of ${task} did not succeed`);
}

export interface ThroughputResult {
  readonly lines: string[];
  readonly worstRatio: number;
}

export async function throughput(runs: number, levels: readonly number[]): Promise<ThroughputResult> {
  const docker = new Docker();
  await detectCgroup(docker);
  await removeBenchContainers(docker, BENCH);
  const task = (c: number) => `tp${c}`;
  const yaml =
    `pools:\n${levels.map((c) => `  p${c}: { concurrency: ${c} }\n`).join('')}` +
    `tasks:\n${levels
      .map(
        (c) =>
          `  ${task(c)}: { image: runlet/busybox:local, command: ["true"], memory: 16m, cpus: 0.5, pool: p${c}, concurrency: ${c}, maxQueued: 100000 }\n`,
      )
      .join('')}`;
  const b = await benchDaemon(yaml, BENCH, docker);
  const lines = [
    `## throughput: ${runs} trivial runs per level, runs/s (raw dockerode workers vs runlet manual runs)`,
    '',
    row([
      'concurrency',
      'raw runs/s',
      'runlet runs/s',
      'ratio',
      'dockerd CPU ms/run raw',
      'runlet',
      'bench process CPU ms/run raw',
      'runlet',
      'machine busy CPU ms/run raw',
      'runlet',
    ]),
    row(['---', '---', '---', '---', '---', '---', '---', '---', '---', '---']),
  ];
  let worst = Infinity;
  const phaseLines = [
    '',
    'phases (p50, host clock): raw create+start; container started → ended and removed (runlet: run:started → run:finished); at concurrency 1, one run done → the next container started',
    '',
    row([
      'concurrency',
      'raw create+start',
      'raw started → removed',
      'runlet started → finished',
      'raw done → next started',
      'runlet done → next started',
    ]),
    row(['---', '---', '---', '---', '---', '---']),
  ];
  try {
    await rawBatch(docker, 2, 1);
    await runletBatch(b, task(levels[0]!), 2);
    for (const c of levels) {
      const rawPh: Phases = { toStarted: [], startedToDone: [], handoff: [] };
      const rlPh: Phases = { toStarted: [], startedToDone: [], handoff: [] };
      const raw = await cpuDuring(() => rawBatch(docker, runs, c, rawPh));
      const rl = await cpuDuring(() => runletBatch(b, task(c), runs, rlPh, c));
      phaseLines.push(
        row([
          c,
          ms(stats(rawPh.toStarted).p50),
          ms(stats(rawPh.startedToDone).p50),
          ms(stats(rlPh.startedToDone).p50),
          c === 1 ? ms(stats(rawPh.handoff).p50) : '',
          c === 1 ? ms(stats(rlPh.handoff).p50) : '',
        ]),
      );
      const per = (s: number) => ((s * 1000) / runs).toFixed(1);
      const rr = runs / raw.wallS;
      const lr = runs / rl.wallS;
      worst = Math.min(worst, lr / rr);
      lines.push(
        row([
          c,
          rr.toFixed(2),
          lr.toFixed(2),
          `${(lr / rr).toFixed(2)}×`,
          per(raw.dockerd),
          per(rl.dockerd),
          per(raw.self),
          per(rl.self),
          per(raw.machine),
          per(rl.machine),
        ]),
      );
      console.error(lines[lines.length - 1]);
    }
  } finally {
    await b.stop();
    await removeBenchContainers(docker, BENCH);
  }
  lines.push(...phaseLines);
  lines.push(
    '',
    `worst ratio: ${worst.toFixed(2)}× (target ≥ 0.9×). "bench process" is this node process: the raw workers' client, or the in-process daemon with its embedded Redis outside it.`,
  );
  return { lines, worstRatio: worst };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  throughput(numFlag('runs', 200), listFlag('levels', '1,2,4,8,16')).then(
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
