/**
 * Warm instances and reuse against the cold path, in one run on one engine:
 *
 *   node dist/bench/warm.js [runs=50] [instances=4] [clients=20]
 *
 * - cold: DockerRuntime prepare → start, timed from the prepare call to the program's first
 *   output byte (busybox `echo hi`, runlet's limits and hardening);
 * - warm: DockerRuntime deliver to an instance made and started beforehand (not timed),
 *   timed from the deliver call to the same first byte;
 * - reuse: one ReusableInstance (node bootstrap, the Lambda Runtime API loop), invoke →
 *   result round trip, sequential; then `clients` concurrent callers sharing a
 *   ReusablePool of `instances` instances, each caller sending its next invocation when the
 *   last one is answered.
 *
 * "First output byte" is measured twice: on an attach to the container's stdout made before
 * the clock starts (the closest outside view of "user code running") and through the log
 * follower runlet's wait() uses (what a live log shows). Cold and warm alternate, so machine
 * noise hits both alike. Every container carries runlet.managed and runlet.bench=warm and is
 * removed, also after an interruption (at the next start).
 */
import Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { DockerRuntime } from '../src/runtime/docker.js';
import { hostAddress } from '../src/runtime/host-address.js';
import { LambdaRuntimeApi } from '../src/runtime/lambda-api.js';
import { ReusableInstance, ReusablePool, type ReusableSpec } from '../src/runtime/reusable.js';
import type { PreparedRun, RunSpec, WarmSpec } from '../src/runtime/types.js';

const RUNS = Number(process.argv[2] ?? 50);
const INSTANCES = Number(process.argv[3] ?? 4);
const CLIENTS = Number(process.argv[4] ?? 20);
const LABELS = { 'runlet.bench': 'warm' };
const MiB = 1024 * 1024;

const docker = new Docker();
const runtime = new DockerRuntime({ docker, labels: LABELS });

const base: RunSpec = {
  runId: 'bench',
  task: 'bench-warm',
  attempt: 1,
  image: 'runlet/busybox:local',
  command: ['echo', 'hi'],
  env: { RUNLET_RUN_ID: 'bench' },
  memoryBytes: 64 * MiB,
  cpus: 0.5,
  pids: 64,
  timeoutMs: 30_000,
  killGraceMs: 1_000,
};

function warmSpecOf(spec: RunSpec): WarmSpec {
  const { runId: _r, attempt: _a, payload: _p, env: _e, timeoutMs: _t, ...warm } = spec;
  return warm;
}

/** Resolves with performance.now() at the first byte the container writes on stdout/stderr. */
async function firstByteOnAttach(containerId: string): Promise<{ first: Promise<number> }> {
  const stream = (await docker.getContainer(containerId).attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
  const out = new PassThrough();
  docker.modem.demuxStream(stream, out, out);
  const first = new Promise<number>((resolve) => out.once('data', () => resolve(performance.now())));
  return { first };
}

async function measure(warm: boolean, n: number): Promise<{ attach: number; log: number }> {
  const spec = { ...base, runId: `bench${warm ? 'w' : 'c'}${n}`, attempt: 1 };
  let run: PreparedRun;
  let t0: number;
  let attached: { first: Promise<number> };
  if (warm) {
    const instance = await runtime.warm(warmSpecOf(spec));
    attached = await firstByteOnAttach(instance.containerId);
    t0 = performance.now();
    run = await runtime.deliver(instance, spec);
  } else {
    t0 = performance.now();
    run = await runtime.prepare(spec);
    // The attach is made inside the clock for cold (it must come after create); it costs ~1 ms.
    attached = await firstByteOnAttach(run.containerId);
    await runtime.start(run);
  }
  let logAt = 0;
  try {
    const result = await runtime.wait(run, { onLog: () => (logAt ||= performance.now()) });
    if (result.outcome !== 'succeeded') throw new Error(`bench run ${spec.runId}: ${result.outcome} ${result.reason ?? ''}`);
  } finally {
    await runtime.remove(run.containerId);
  }
  // A first byte the live stream never showed (it came only with the final read of the log) is not a sample.
  return { attach: (await attached.first) - t0, log: logAt ? logAt - t0 : Number.NaN };
}

const BOOTSTRAP = `
const API = 'http://' + process.env.AWS_LAMBDA_RUNTIME_API + '/2018-06-01/runtime';
(async () => {
  for (;;) {
    const next = await fetch(API + '/invocation/next');
    const id = next.headers.get('Lambda-Runtime-Aws-Request-Id');
    const event = await next.json();
    await fetch(API + '/invocation/' + id + '/response', { method: 'POST', body: JSON.stringify({ statusCode: 200, body: event }) });
  }
})();`;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

async function removeLeftovers(): Promise<void> {
  const left = await docker.listContainers({ all: true, filters: { label: ['runlet.bench=warm'] } });
  await Promise.all(
    left.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
}

async function main(): Promise<void> {
  await removeLeftovers();
  process.on('SIGINT', () => void removeLeftovers().finally(() => process.exit(130)));

  await measure(false, -1); // warm-up, not counted
  await measure(true, -1);
  const cold = { attach: [] as number[], log: [] as number[] };
  const warm = { attach: [] as number[], log: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    const c = await measure(false, i);
    cold.attach.push(c.attach);
    if (!Number.isNaN(c.log)) cold.log.push(c.log);
    const w = await measure(true, i);
    warm.attach.push(w.attach);
    if (!Number.isNaN(w.log)) warm.log.push(w.log);
  }

  const api = await LambdaRuntimeApi.listen((await hostAddress(docker, { labels: LABELS })).address);
  const reuseSpec: ReusableSpec = {
    ...warmSpecOf({ ...base, image: 'runlet/node:local', command: ['node', '-e', BOOTSTRAP], memoryBytes: 128 * MiB }),
    maxInvocations: 1_000_000,
  };
  const sequential: number[] = [];
  const one = await ReusableInstance.start(runtime, api, reuseSpec);
  await one.ready;
  for (let i = -5; i < RUNS; i++) {
    const t0 = performance.now();
    const r = await one.invoke(JSON.stringify({ i }), { timeoutMs: 10_000 });
    if (r.outcome !== 'succeeded') throw new Error(`invocation ${i}: ${r.outcome} ${r.reason ?? ''}`);
    if (i >= 0) sequential.push(performance.now() - t0);
  }
  await one.retire();

  const pool = new ReusablePool(() => ReusableInstance.start(runtime, api, reuseSpec), INSTANCES);
  await pool.fill();
  const concurrent: number[] = [];
  const perClient = Math.max(RUNS, 50);
  const began = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; i < perClient; i++) {
        const t0 = performance.now();
        const r = await pool.invoke(JSON.stringify({ c, i }), { timeoutMs: 10_000 });
        if (r.outcome !== 'succeeded') throw new Error(`client ${c} invocation ${i}: ${r.outcome} ${r.reason ?? ''}`);
        concurrent.push(performance.now() - t0);
      }
    }),
  );
  const wall = performance.now() - began;
  await pool.close();
  await api.close();
  await removeLeftovers();

  const f = (x: number) => `${x.toFixed(1)} ms`;
  const row = (label: string, xs: number[]) =>
    `| ${label} | ${f(pct(xs, 50))} | ${f(pct(xs, 99))} | ${f(Math.min(...xs))} | ${xs.length} |`;
  console.log(`warm instances and reuse, ${new Date().toISOString()}, node dist/bench/warm.js ${RUNS} ${INSTANCES} ${CLIENTS}`);
  console.log('| | p50 | p99 | min | n |');
  console.log('|---|---|---|---|---|');
  console.log(row('cold: prepare → first byte (attach)', cold.attach));
  console.log(row('cold: prepare → first byte (log follower)', cold.log));
  console.log(row('warm: deliver → first byte (attach)', warm.attach));
  console.log(row('warm: deliver → first byte (log follower)', warm.log));
  console.log(row('reuse: invoke → result, 1 client, 1 instance', sequential));
  console.log(row(`reuse: invoke → result, ${CLIENTS} clients, ${INSTANCES} instances`, concurrent));
  console.log(
    `ratio warm/cold p50 (attach): ${(pct(warm.attach, 50) / pct(cold.attach, 50)).toFixed(3)}; (log follower): ${(pct(warm.log, 50) / pct(cold.log, 50)).toFixed(3)}`,
  );
  console.log(`reuse throughput with ${CLIENTS} clients: ${((concurrent.length / wall) * 1000).toFixed(0)} invocations/s`);
}

main().catch(async (err: unknown) => {
  console.error(err);
  await removeLeftovers();
  process.exit(1);
});
