/**
 * Webhook intake throughput: signed hmac-sha256 requests per second answered 202 (each
 * verified, deduped and durably recorded and queued in Redis), against the floor: a bare
 * fastify route that does nothing, hit by the same client with the same requests.
 * Alternating rounds, so machine noise hits both alike; the ratio is the figure to
 * compare across machines.
 *
 *   node dist/bench/webhook-intake.js [requests=2000] [concurrency=32] [rounds=3]
 *
 * No container runs: the task's BullMQ queue is paused before the first request (jobs
 * are still added durably, the workers just do not take them) and obliterated afterwards.
 */
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { parseConfig } from '../src/config/load.js';
import { startDaemon } from '../src/daemon.js';
import { startEmbeddedRedis } from '../src/lib/embedded-redis.js';
import { createLogger } from '../src/lib/logger.js';
import { redisOptions } from '../src/lib/redis.js';
import { BULL_PREFIX, keys } from '../src/runs/keys.js';
import { signHmac } from '../src/triggers/webhook/signature.js';

const REQUESTS = Number(process.argv[2] ?? 2000);
const CONCURRENCY = Number(process.argv[3] ?? 32);
const ROUNDS = Number(process.argv[4] ?? 3);
const TASK = 'bid-placed';
const SECRET = 'bench-secret';

let seq = 0;

/** One signed request per call, unique delivery id, as a sender would send it. */
function nextRequest(): { body: string; headers: Record<string, string> } {
  const n = seq++;
  const body = JSON.stringify({ bid: n, auction: 'a-17', amount: 1234.5, bidder: 'bench', at: new Date().toISOString() });
  return {
    body,
    headers: { 'content-type': 'application/json', 'x-runlet-delivery': `bench-${n}`, 'x-runlet-signature': signHmac(SECRET, body) },
  };
}

// node:http with keep-alive rather than fetch: fetch costs the client several times more
// per request, and client and servers share this process, so it would flatten both figures.
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function post(url: URL, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends `n` requests over CONCURRENCY clients, each waiting for its answer; requests/s. */
async function drive(url: string, n: number, expect: number): Promise<number> {
  const target = new URL(url);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        next++;
        const { body, headers } = nextRequest();
        const status = await post(target, body, headers);
        if (status !== expect) throw new Error(`${url} answered ${status}, expected ${expect}`);
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'runlet-bench-'));
  const file = join(dir, 'runlet.yaml');
  // overlap: queue with room for every request, so each one is a queued run (the overlap
  // policy still reads the queue counts, as it does in production).
  const yaml = `tasks:\n  ${TASK}:\n    image: runlet/busybox:local\n    command: ["true"]\n    maxQueued: 1000000\n    webhook: { secret: ${SECRET}, signature: hmac-sha256 }\n`;
  writeFileSync(file, yaml);
  const redis = await startEmbeddedRedis(join(dir, 'data'));
  const daemon = await startDaemon({
    config: parseConfig(yaml, file, {}),
    logger: createLogger({ level: 'warn' }),
    dataDir: join(dir, 'data'),
    node: 'bench',
    redisUrl: `unix://${redis.path}`,
    port: 0,
  });
  const queue = new Queue(TASK, { connection: redisOptions(daemon.redisTarget), prefix: BULL_PREFIX });
  await queue.pause();

  const bare = Fastify();
  bare.post('/noop', async () => ({ ok: true }));
  await bare.listen({ port: 0, host: '127.0.0.1' });
  const bareUrl = `http://127.0.0.1:${(bare.server.address() as { port: number }).port}/noop`;
  const hookUrl = `${daemon.url}/hooks/${TASK}`;

  const runlet: number[] = [];
  const floor: number[] = [];
  try {
    await drive(hookUrl, 200, 202);
    await drive(bareUrl, 200, 200);
    for (let r = 0; r < ROUNDS; r++) {
      runlet.push(await drive(hookUrl, REQUESTS, 202));
      floor.push(await drive(bareUrl, REQUESTS, 200));
    }
    // Every 202 stands for a run record and a queue job: check both were really written.
    const want = 200 + ROUNDS * REQUESTS;
    const recorded = await daemon.redis.zcard(keys.taskRuns(TASK));
    const c = await queue.getJobCounts('waiting', 'paused');
    const jobs = (c.waiting ?? 0) + (c.paused ?? 0);
    if (recorded !== want || jobs !== want)
      throw new Error(`expected ${want} recorded runs and queued jobs, found ${recorded} and ${jobs}`);
  } finally {
    await queue.obliterate({ force: true }).catch((err) => console.error('could not obliterate the queue:', err));
    await queue.close();
    agent.destroy();
    await bare.close();
    await daemon.stop();
    const docker = new Docker();
    const left = await docker.listContainers({ all: true, filters: { label: [`runlet.cluster=${daemon.identity.clusterId}`] } });
    await Promise.all(
      left.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch(() => undefined),
      ),
    );
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} req/s  (rounds: ${xs.map((x) => x.toFixed(0)).join(', ')})`;
  console.log(`webhook intake, ${REQUESTS} requests × ${ROUNDS} rounds at concurrency ${CONCURRENCY}, ${new Date().toISOString()}`);
  console.log(`  bare fastify route (no work)                  ${fmt(floor)}`);
  console.log(`  runlet POST /hooks → 202 (verify+record+job)  ${fmt(runlet)}`);
  console.log(`  ratio runlet / floor (median)                 ${(median(runlet) / median(floor)).toFixed(2)}x`);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
