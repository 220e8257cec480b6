/**
 * HTTP functions through the fn listener of a real daemon (in-process, embedded Redis):
 * request → user code, for a cold function, a warm (fresh) one and a reusable one, beside a
 * bare fastify route in this process.
 *
 *   node dist/bench/functions-warm.js [requests=200] [clients=20]
 *
 * "User code" is the function's first statement: it reads the clock (the container shares
 * the host's) and returns it; the figure is that time minus the moment the client sent the
 * request. `clients` callers each send their next request when the last one is answered.
 * - cold: `warm: 0, warmIdle: 0s`, a node one-liner per request (a container per request);
 * - warm: `warm: <clients>` fresh instances of the same (each request its own container, made ahead);
 * - reuse: `reuse: true`, a node Lambda bootstrap loop, `concurrency: <clients>`;
 * - fastify: a route in this process answering Date.now().
 * Every container carries runlet labels and is removed when the daemon stops.
 */
import Fastify from 'fastify';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/lib/logger.js';

const REQUESTS = Number(process.argv[2] ?? 200);
const CLIENTS = Number(process.argv[3] ?? 20);

// The first statement reads the clock (busybox's date has no sub-second format, so node).
const FIRST = `require('fs').writeFileSync('/runlet/output.json', JSON.stringify({ t: Date.now() }))`;
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
  default: { concurrency: ${CLIENTS * 2} }
tasks:
  cold:
    image: runlet/node:local
    command: [node, -e, ${JSON.stringify(FIRST)}]
    memory: 64m
    concurrency: ${CLIENTS}
    maxQueued: 1000
    warmIdle: 0s
    http: { routes: ["GET /cold"], auth: none, timeout: 60s }
  warm:
    image: runlet/node:local
    command: [node, -e, ${JSON.stringify(FIRST)}]
    memory: 64m
    concurrency: ${CLIENTS}
    maxQueued: 1000
    warm: ${CLIENTS}
    http: { routes: ["GET /warm"], auth: none, timeout: 60s }
  reuse:
    image: runlet/node:local
    command: [node, -e, ${JSON.stringify(BOOTSTRAP)}]
    memory: 96m
    concurrency: ${CLIENTS}
    maxQueued: 1000
    reuse: true
    warm: 1
    http: { routes: ["GET /reuse"], auth: none, timeout: 60s }
`;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function load(url: string, total: number, clients: number): Promise<{ toCode: number[]; round: number[]; errors: number }> {
  const toCode: number[] = [];
  const round: number[] = [];
  let left = total;
  let errors = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (left-- > 0) {
        const sent = Date.now();
        const t0 = performance.now();
        const res = await fetch(url);
        const body = (await res.json()) as { t?: number };
        round.push(performance.now() - t0);
        if (res.status !== 200 || typeof body.t !== 'number') errors++;
        else toCode.push(body.t - sent);
      }
    }),
  );
  return { toCode, round, errors };
}

async function main(): Promise<void> {
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
    labels: { 'runlet.x-bench': 'functions-warm' },
  });
  const app = Fastify();
  app.get('/bare', async () => ({ t: Date.now() }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const bare = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/bare`;
  try {
    // Let the warm instances and the reusable pool come up, then one untimed round each.
    await new Promise((r) => setTimeout(r, 8_000));
    for (const path of ['/cold', '/warm', '/reuse']) await load(`${daemon.fnUrl}${path}`, 2, 1);
    await new Promise((r) => setTimeout(r, 3_000));
    const rows: string[] = [];
    for (const [name, url, n] of [
      ['fastify (in-process)', bare, REQUESTS],
      ['reuse', `${daemon.fnUrl}/reuse`, REQUESTS],
      ['warm (fresh)', `${daemon.fnUrl}/warm`, CLIENTS],
      ['cold', `${daemon.fnUrl}/cold`, Math.min(REQUESTS, 40)],
    ] as const) {
      const r = await load(url, n, CLIENTS);
      rows.push(
        `| ${name} | ${pct(r.toCode, 50)} ms | ${pct(r.toCode, 99)} ms | ${pct(r.round, 50).toFixed(1)} ms | ${r.toCode.length} | ${r.errors} |`,
      );
      // Replacements of used warm instances come up before the next series.
      await new Promise((res) => setTimeout(res, 5_000));
    }
    console.log(`requests=${REQUESTS} clients=${CLIENTS}`);
    console.log('| path | request → user code p50 | p99 | round trip p50 | n | errors |');
    console.log('|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    await app.close();
    await daemon.stop();
  }
}

void main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
