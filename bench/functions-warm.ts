/**
 * HTTP functions through the fn listener of a real daemon (in-process, embedded Redis),
 * request → user code and request → response, beside the cold floor and a bare fastify route:
 *
 *   node dist/bench/functions-warm.js [requests=400] [clients=20]
 *
 * "User code" is the function's first statement reading the clock (containers share the
 * host's clock); the figure is that minus the moment the caller sent the request. Callers run
 * in a process of their own (fn-clients.ts), on keep-alive connections.
 * - floor: the raw Docker API creating and starting the same busybox container with the same
 *   hardening, create → its first clock reading (lib.ts floorRun): the cold path's floor;
 * - cold: a busybox function with `warm: 0, warmIdle: 0s` (a container per request);
 * - warm (fresh): the same with `warm: 2`, one caller pausing between requests so that each
 *   finds a fresh instance (a replacement starts after each use): the "warm, fresh
 *   instance" target; warm node: the same with node's own start-up in it;
 * - reuse: `reuse: true`, a node Lambda bootstrap loop, `warm` and `concurrency` = clients,
 *   measured once the instances are up (a first untimed round), with `clients` callers;
 * - fastify: a route in the daemon's process answering Date.now() (the same callers).
 * Every container carries runlet labels and is removed when the daemon stops.
 */
import Docker from 'dockerode';
import Fastify from 'fastify';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config/load.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/lib/logger.js';
import { BENCH_LABEL, detectCgroup, floorRun, removeBenchContainers, row, sleep, stats, SUITE_ID, SUITE_LABEL } from './lib.js';

const REQUESTS = Number(process.argv[2] ?? 400);
const CLIENTS = Number(process.argv[3] ?? 20);
const FRESH = 20;
/** `--only reuse|warm|cold|fastify`: one path (with --cpu-prof, a profile of just that path). */
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const only = <T>(path: string, fn: () => Promise<T>): Promise<T | undefined> =>
  !ONLY || ONLY === path ? fn() : Promise.resolve(undefined);
const BENCH = 'functions-warm';

// busybox: the shell's $EPOCHREALTIME (µs) is the first statement; node: Date.now().
const BUSYBOX_FIRST = 'echo "{\\"us\\":$${EPOCHREALTIME/./}}" > /runlet/output.json';
const NODE_FIRST = `require('fs').writeFileSync('/runlet/output.json', JSON.stringify({ t: Date.now() }))`;
const BOOTSTRAP = `
const API = 'http://' + process.env.AWS_LAMBDA_RUNTIME_API + '/2018-06-01/runtime';
(async () => { for (;;) {
  const next = await fetch(API + '/invocation/next');
  const t = Date.now();
  const id = next.headers.get('Lambda-Runtime-Aws-Request-Id');
  await next.arrayBuffer();
  await fetch(API + '/invocation/' + id + '/response', { method: 'POST', body: JSON.stringify({ t }) });
} })();`;

const YAML = `
pools:
  default: { concurrency: ${CLIENTS * 2 + 8} }
defaults: { memory: 32m }
tasks:
  cold:
    concurrency: ${CLIENTS}
    maxQueued: 1000
    image: runlet/busybox:local
    command: [sh, -c, '${BUSYBOX_FIRST}']
    warmIdle: 0s
    http: { routes: ["GET /cold"], auth: none, timeout: 60s }
  warm:
    concurrency: ${CLIENTS}
    maxQueued: 1000
    image: runlet/busybox:local
    command: [sh, -c, '${BUSYBOX_FIRST}']
    warm: 2
    http: { routes: ["GET /warm"], auth: none, timeout: 60s }
  warm-node:
    concurrency: ${CLIENTS}
    maxQueued: 1000
    image: runlet/node:local
    command: [node, -e, ${JSON.stringify(NODE_FIRST)}]
    memory: 64m
    warm: 2
    http: { routes: ["GET /warm-node"], auth: none, timeout: 60s }
  reuse:
    concurrency: ${CLIENTS}
    maxQueued: 1000
    image: runlet/node:local
    command: [node, -e, ${JSON.stringify(BOOTSTRAP)}]
    memory: 96m
    reuse: true
    warm: ${CLIENTS}
    http: { routes: ["GET /reuse"], auth: none, timeout: 60s }
`;

interface Load {
  readonly toCode: number[];
  readonly round: number[];
  readonly errors: number;
  readonly firstError?: string;
}

/** The callers, in a process of their own (fn-clients.ts). */
async function load(url: string, total: number, clients: number, pauseMs = 0): Promise<Load> {
  const { stdout } = await promisify(execFile)(process.execPath, [
    join(import.meta.dirname, 'fn-clients.js'),
    JSON.stringify({ url, total, clients, pauseMs }),
  ]);
  return JSON.parse(stdout) as Load;
}

const f = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '—');

async function main(): Promise<void> {
  const docker = new Docker();
  await detectCgroup(docker);
  const dir = mkdtempSync(join(tmpdir(), 'runlet-bench-fn-'));
  const file = join(dir, 'runlet.yaml');
  writeFileSync(file, YAML);
  const daemon = await startDaemon({
    config: loadConfig(file),
    logger: createLogger({ level: 'warn' }),
    dataDir: dir,
    node: 'bench',
    port: 0,
    fnPort: 0,
    fnHost: '127.0.0.1',
    docker,
    labels: { [BENCH_LABEL]: BENCH, [SUITE_LABEL]: SUITE_ID },
  });
  const app = Fastify();
  app.get('/bare', async () => ({ t: Date.now() }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const bare = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/bare`;
  const rows: string[] = [];
  const add = (name: string, r: Load | undefined, clients: number) => {
    if (!r) return;
    const code = stats(r.toCode);
    const round = stats(r.round);
    rows.push(row([name, clients, f(code.p50), f(code.p99), f(round.p50), f(round.p99), code.n, r.errors]));
    if (r.firstError) console.error(`${name}: first error: ${r.firstError}`);
  };
  try {
    const floor: number[] = [];
    for (let i = 0; i < (ONLY ? 0 : 10); i++) floor.push((await floorRun(docker, BENCH)).toRunning);
    rows.push(row(['floor (raw Docker, cold)', 1, f(stats(floor).p50), f(stats(floor).p99), '—', '—', floor.length, 0]));
    // Let the warm instances and the reusable pool come up, then one untimed round each.
    await sleep(8_000);
    for (const path of ['/cold', '/warm', '/warm-node']) await load(`${daemon.fnUrl}${path}`, 2, 1, 500);
    await load(`${daemon.fnUrl}/reuse`, CLIENTS * 5, CLIENTS);
    await sleep(3_000);

    add('fastify (in-process)', await only('fastify', () => load(bare, REQUESTS, CLIENTS)), CLIENTS);
    // Daemon CPU and Redis commands per reuse invocation: what a request costs runlet itself.
    const commandStats = async (): Promise<Map<string, number>> => {
      const text = (await daemon.redis.info('commandstats')) as string;
      return new Map([...text.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
    };
    const before = await commandStats();
    const cpu0 = process.cpuUsage();
    add('reuse', await only('reuse', () => load(`${daemon.fnUrl}/reuse`, REQUESTS, CLIENTS)), CLIENTS);
    const cpu = process.cpuUsage(cpu0);
    if (!ONLY || ONLY === 'reuse') {
      const after = await commandStats();
      const total = [...after].reduce((a, [c, n]) => a + n - (before.get(c) ?? 0), 0);
      console.log(
        `per reuse invocation at ${CLIENTS} callers: daemon CPU ${((cpu.user + cpu.system) / 1000 / REQUESTS).toFixed(2)} ms,`,
        `Redis commands ${(total / REQUESTS).toFixed(1)} (scripts' inner calls included)`,
      );
    }
    add('reuse', await only('reuse', () => load(`${daemon.fnUrl}/reuse`, REQUESTS / 4, 1)), 1);
    // One caller, a pause after each request: each finds a fresh instance made ahead.
    add('warm (fresh), busybox', await only('warm', () => load(`${daemon.fnUrl}/warm`, FRESH, 1, 700)), 1);
    add('warm (fresh), node', await only('warm', () => load(`${daemon.fnUrl}/warm-node`, FRESH, 1, 900)), 1);
    if (!ONLY || ONLY === 'warm') {
      // Where a fresh instance's answer goes: the record's own timestamps.
      const runs = await daemon.store.list({ task: 'warm', limit: FRESH });
      const ph = (fn: (r: (typeof runs)[number]) => number) => stats(runs.map(fn).filter(Number.isFinite)).p50.toFixed(1);
      console.log(
        'warm (fresh) busybox, record p50 (ms): created→started',
        ph((r) => r.startedAt! - r.createdAt),
        'started→finished',
        ph((r) => r.finishedAt! - r.startedAt!),
        'finished→updated',
        ph((r) => r.updatedAt - r.finishedAt!),
      );
    }
    add('cold, busybox', await only('cold', () => load(`${daemon.fnUrl}/cold`, FRESH, 1)), 1);

    console.log(`requests=${REQUESTS} clients=${CLIENTS}`);
    console.log('| path | callers | request → user code p50 (ms) | p99 | request → response p50 (ms) | p99 | n | errors |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    await app.close();
    await daemon.stop();
    await removeBenchContainers(docker, BENCH);
  }
}

void main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
