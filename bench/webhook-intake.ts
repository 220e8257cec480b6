/**
 * Webhook intake: signed hmac-sha256 requests answered 202 (each verified, deduped, recorded
 * and queued durably in Redis) per second and their p99, driven by autocannon on loopback;
 * beside the floor, a bare fastify route in the same process hit the same way. Alternating
 * rounds, so machine noise hits both alike.
 *
 *   node dist/bench/webhook-intake.js [--requests 5000] [--connections 32] [--rounds 3]
 *
 * No container runs: the pool's BullMQ queue is paused before the first request (jobs are
 * still added durably, the workers just do not take them) and obliterated afterwards; every
 * 202 is checked to have left a run record and a queued job.
 */
import autocannon, { type AutocannonRequest, type AutocannonResult } from 'autocannon';
import { Queue } from 'bullmq';
import Docker from 'dockerode';
import Fastify from 'fastify';
import { fileURLToPath } from 'node:url';
import { redisOptions } from '../src/lib/redis.js';
import { BULL_PREFIX, keys } from '../src/runs/keys.js';
import { queueNameOf } from '../src/dispatch/queues.js';
import { signHmac } from '../src/triggers/webhook/signature.js';
import { benchDaemon, numFlag, row } from './lib.js';

const BENCH = 'webhook-intake';
const TASK = 'bid-placed';
const SECRET = 'bench-secret';

let seq = 0;

/** A new signed request each time autocannon asks (setupRequest): a unique delivery id, as a sender sends it. */
function signed(req: AutocannonRequest): AutocannonRequest {
  const n = seq++;
  const body = JSON.stringify({ bid: n, auction: 'a-17', amount: 1234.5, bidder: 'bench', at: new Date().toISOString() });
  return {
    ...req,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'x-runlet-delivery': `bench-${n}`, 'x-runlet-signature': signHmac(SECRET, body) },
  };
}

type Round = AutocannonResult & { wallS: number };

/** One round; its rate is the requests over our own wall clock (autocannon's duration counts whole sampling seconds). */
async function drive(url: string, amount: number, connections: number, expect: number): Promise<Round> {
  const t0 = performance.now();
  const r = await autocannon({ url, connections, amount, requests: [{ setupRequest: signed }] });
  const wallS = (performance.now() - t0) / 1000;
  const codes = Object.entries(r.statusCodeStats ?? {})
    .map(([code, s]) => `${code}×${s.count}`)
    .join(', ');
  if (r.errors || r.timeouts || (r.statusCodeStats && Object.keys(r.statusCodeStats).some((c) => Number(c) !== expect)))
    throw new Error(`${url}: ${r.errors} errors, ${r.timeouts} timeouts, status codes ${codes} (expected ${expect})`);
  return { ...r, wallS };
}

export interface WebhookIntakeResult {
  readonly lines: string[];
  readonly ratio: number;
}

export async function webhookIntake(requests: number, connections: number, rounds: number): Promise<WebhookIntakeResult> {
  const docker = new Docker();
  // overlap: allow, so every request is admitted by the task gate and gets its queue job (the
  // whole durable path: dedupe claim, record, gate, job, outbox confirm).
  const b = await benchDaemon(
    `tasks:\n  ${TASK}:\n    image: runlet/busybox:local\n    command: ["true"]\n    overlap: allow\n    webhook: { secret: ${SECRET}, signature: hmac-sha256 }\n`,
    BENCH,
    docker,
  );
  // The pool's queue, paused: jobs are added durably and no container runs.
  const queue = new Queue(queueNameOf('default'), { connection: redisOptions(b.daemon.redisTarget), prefix: BULL_PREFIX });
  await queue.pause();
  const bare = Fastify();
  bare.post('/noop', async () => ({ ok: true }));
  await bare.listen({ port: 0, host: '127.0.0.1' });
  const bareUrl = `http://127.0.0.1:${(bare.server.address() as { port: number }).port}/noop`;
  const hookUrl = `${b.daemon.url}/hooks/${TASK}`;
  const runlet: Round[] = [];
  const floor: Round[] = [];
  try {
    const warm = 500;
    await drive(hookUrl, warm, connections, 202);
    await drive(bareUrl, warm, connections, 200);
    for (let r = 0; r < rounds; r++) {
      floor.push(await drive(bareUrl, requests, connections, 200));
      runlet.push(await drive(hookUrl, requests, connections, 202));
    }
    // Every 202 stands for a run record and a queue job: check both were really written.
    const want = warm + rounds * requests;
    const recorded = await b.daemon.redis.zcard(keys.taskRuns(TASK));
    const c = await queue.getJobCounts('waiting', 'paused');
    const jobs = (c.waiting ?? 0) + (c.paused ?? 0);
    if (recorded !== want || jobs !== want)
      throw new Error(`expected ${want} recorded runs and queued jobs, found ${recorded} and ${jobs}`);
  } finally {
    await queue.obliterate({ force: true }).catch((err) => console.error('could not obliterate the queue:', err));
    await queue.close();
    await bare.close();
    await b.stop();
  }
  const rate = (r: Round) => r.requests.total / r.wallS;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const line = (name: string, rs: Round[]) =>
    row([
      name,
      `${median(rs.map(rate)).toFixed(0)} req/s`,
      `${median(rs.map((r) => r.latency.p99)).toFixed(1)} ms`,
      rs.map((r) => `${rate(r).toFixed(0)}/s p99 ${r.latency.p99} ms`).join('; '),
    ]);
  const ratio = median(runlet.map(rate)) / median(floor.map(rate));
  return {
    ratio,
    lines: [
      `## webhook intake: autocannon, ${requests} requests × ${rounds} rounds, ${connections} connections, loopback, same process`,
      '',
      row(['', 'requests/s (median)', 'p99 (median)', 'rounds']),
      row(['---', '---', '---', '---']),
      line('bare fastify POST /noop', floor),
      line('runlet POST /hooks → durable 202', runlet),
      '',
      `ratio runlet / bare: ${ratio.toFixed(2)}× (target ≥ 0.5×)`,
    ],
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  webhookIntake(numFlag('requests', 5000), numFlag('connections', 32), numFlag('rounds', 3)).then(
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
