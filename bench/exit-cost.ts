/**
 * The engine's own cost after a program ends, raw Docker API only (no runlet):
 *
 *   node dist/bench/exit-cost.js [runs=20]
 *
 * A busybox container with runlet's hardening prints the kernel clock (adjtimex) as its last
 * act and exits. Timed on the host's clock from that reading: the engine's `State.FinishedAt`
 * (the process seen gone) and `wait()` returning; then how long an inspect and the removal
 * take. With
 * `bridge` networking and with `network: none`, alternated so load hits both alike.
 * This is the floor under any answer that waits for a container's end (a fresh warm
 * instance's function response, a cold run's `succeeded`): what it costs is Docker's.
 */
import Docker from 'dockerode';
import { CLOCK_COMMAND, clockFromLog, detectCgroup, floorCreateOptions, nowMs, removeBenchContainers, row, stats } from './lib.js';

const RUNS = Number(process.argv[2] ?? 20);
const BENCH = 'exit-cost';

interface Sample {
  finished: number;
  waited: number;
  inspect: number;
  remove: number;
}

async function once(docker: Docker, network: 'bridge' | 'none'): Promise<Sample | undefined> {
  const opts = floorCreateOptions(BENCH, CLOCK_COMMAND);
  opts.HostConfig = { ...opts.HostConfig, NetworkMode: network, ...(network === 'none' && { ExtraHosts: [] }) };
  const c = await docker.createContainer(opts);
  await c.start();
  await c.wait();
  const waited = nowMs();
  // Untimed: the program's clock reading is in its log.
  const exitedAt = clockFromLog((await c.logs({ stdout: true, stderr: true })).toString('latin1'));
  const t1 = nowMs();
  const info = await c.inspect();
  const t2 = nowMs();
  await c.remove({ force: true, v: true });
  const t3 = nowMs();
  if (exitedAt === undefined) return undefined;
  return { finished: Date.parse(info.State.FinishedAt) - exitedAt, waited: waited - exitedAt, inspect: t2 - t1, remove: t3 - t2 };
}

async function main(): Promise<void> {
  const docker = new Docker();
  await detectCgroup(docker);
  const by: Record<string, Sample[]> = { bridge: [], none: [] };
  try {
    for (const n of ['bridge', 'none'] as const) await once(docker, n); // untimed warm-up
    for (let i = 0; i < RUNS; i++)
      for (const n of i % 2 ? (['none', 'bridge'] as const) : (['bridge', 'none'] as const)) {
        const s = await once(docker, n);
        if (s) by[n]!.push(s);
      }
  } finally {
    await removeBenchContainers(docker, BENCH);
  }
  console.log(`exit-cost: ${RUNS} runs each, alternated; p50 / p99 in ms`);
  console.log("| network | program's last clock → engine FinishedAt | → wait() returned | inspect takes | remove takes | n |");
  console.log('|---|---|---|---|---|---|');
  const f = (xs: number[]): string => `${stats(xs).p50.toFixed(1)} / ${stats(xs).p99.toFixed(1)}`;
  for (const [n, xs] of Object.entries(by))
    console.log(
      row([
        n,
        f(xs.map((s) => s.finished)),
        f(xs.map((s) => s.waited)),
        f(xs.map((s) => s.inspect)),
        f(xs.map((s) => s.remove)),
        xs.length,
      ]),
    );
}

void main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
