import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHmac } from '../src/triggers/webhook/signature.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTcpRedis } from './helpers/host.js';
import { startTestRedis } from './helpers/redis.js';

// tasks/bid-placed end to end: its image run by a real daemon, triggered by a signed
// webhook (respond: result) and by a BullMQ job, against a real auction Redis.
const SECRET = 'bid-secret';
const WINDOW_MS = 60_000;
const MIN_INCREMENT = 5;
const YAML = `
defaults: { memory: 128m, timeout: 20s }
tasks:
  bid-placed:
    image: runlet/task-bid-placed:local
    concurrency: 8
    env: { AUCTION_REDIS_URL: "\${AUCTION_REDIS_URL}", SNIPING_WINDOW_MS: ${WINDOW_MS}, MIN_INCREMENT: ${MIN_INCREMENT} }
    webhook: { secret: ${SECRET}, respond: result, resultTimeout: 20s }
    queue: { name: bids }
  bid-fn:
    image: runlet/task-bid-placed:local
    concurrency: 4
    warm: 2
    env: { AUCTION_REDIS_URL: "\${AUCTION_REDIS_URL}", SNIPING_WINDOW_MS: ${WINDOW_MS}, MIN_INCREMENT: ${MIN_INCREMENT} }
    http: { routes: ["POST /bids"], auth: none }
  baseline:
    image: runlet/busybox:local
    command: ["true"]
    memory: 16m
    webhook: { secret: ${SECRET}, respond: result, resultTimeout: 20s }
`;

let runletRedis: Awaited<ReturnType<typeof startTestRedis>>;
let auctions: Awaited<ReturnType<typeof startTcpRedis>>;
let daemon: TestDaemon;

beforeAll(async () => {
  [runletRedis, auctions] = await Promise.all([startTestRedis(), startTcpRedis()]);
  const config = configFrom(YAML, { AUCTION_REDIS_URL: auctions.urlForContainers });
  daemon = await startTestDaemon({ config, redisUrl: runletRedis.url, stalledMs: 2000, fnPort: 0, fnHost: '127.0.0.1' });
});
afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await Promise.all([runletRedis?.stopAndClean(), auctions?.stop()]);
});

interface Accepted {
  accepted: true;
  auctionId: string;
  highestBid: number;
  endsAt: string;
  extended: boolean;
}
interface Refused {
  accepted: false;
  auctionId: string;
  reason: string;
  highestBid?: number;
  minimumBid?: number;
  endsAt?: string;
}
type Answer = Accepted | Refused;

let deliveries = 0;
const hook = (task: string, body: string) =>
  fetch(`${daemon.url}/hooks/${task}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'x-runlet-signature': signHmac(SECRET, body), 'x-runlet-delivery': `d-${++deliveries}` },
  });
const bid = async (auctionId: string, amount: number, bidder = `bidder-${amount}`) => {
  const res = await hook('bid-placed', JSON.stringify({ auctionId, bidder, amount, placedAt: new Date().toISOString() }));
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Answer;
};

async function seedAuction(id: string, endsInMs: number, fields: Record<string, string | number> = {}): Promise<number> {
  const endsAt = Date.now() + endsInMs;
  await auctions.client.hset(`auction:{${id}}`, { status: 'open', endsAt, startingPrice: 100, ...fields });
  return endsAt;
}
const auction = (id: string) => auctions.client.hgetall(`auction:{${id}}`);
const history = async (id: string) =>
  (await auctions.client.lrange(`auction:{${id}}:bids`, 0, -1)).map(
    (r) => JSON.parse(r) as { bidder: string; amount: string; endsAt: string; extended: boolean },
  );

describe('bid-placed over a webhook with respond: result', () => {
  it('a bid in the last minute: 200 with the new end time, extended to now + window, and Redis shows it', async () => {
    const oldEndsAt = await seedAuction('a-sniped', 30_000);
    const before = Date.now();
    const answer = await bid('a-sniped', 150);
    const after = Date.now();
    expect(answer).toMatchObject({ accepted: true, auctionId: 'a-sniped', highestBid: 150, extended: true });
    const endsAt = Date.parse((answer as Accepted).endsAt);
    expect(endsAt).toBeGreaterThan(oldEndsAt);
    expect(endsAt).toBeGreaterThanOrEqual(before + WINDOW_MS);
    expect(endsAt).toBeLessThanOrEqual(after + WINDOW_MS);
    expect(await auction('a-sniped')).toMatchObject({ highestBid: '150', highestBidder: 'bidder-150', endsAt: String(endsAt) });
  });

  it('a bid earlier than the last minute leaves the end time alone', async () => {
    const endsAt = await seedAuction('a-early', 10 * 60_000);
    const answer = await bid('a-early', 120);
    expect(answer).toEqual({
      accepted: true,
      auctionId: 'a-early',
      highestBid: 120,
      endsAt: new Date(endsAt).toISOString(),
      extended: false,
    });
    expect(await auction('a-early')).toMatchObject({ highestBid: '120', endsAt: String(endsAt) });
  });

  it('refusals are answers (200, accepted false, a reason), and leave the auction as it was', async () => {
    const endsAt = await seedAuction('a-refuse', 10 * 60_000, { highestBid: 200, highestBidder: 'alice' });
    await seedAuction('a-over', -1000);
    await seedAuction('a-closed', 60_000, { status: 'closed' });
    await seedAuction('a-fresh', 60_000);
    const [tooLow, belowStart, over, closed, unknown] = await Promise.all([
      bid('a-refuse', 200 + MIN_INCREMENT - 1),
      bid('a-fresh', 99),
      bid('a-over', 500),
      bid('a-closed', 500),
      bid('a-nowhere', 500),
    ]);
    expect(tooLow).toEqual({
      accepted: false,
      auctionId: 'a-refuse',
      reason: 'bid_too_low',
      highestBid: 200,
      minimumBid: 200 + MIN_INCREMENT,
      endsAt: new Date(endsAt).toISOString(),
    });
    // No bid yet: the starting price is the minimum.
    expect(belowStart).toMatchObject({ accepted: false, reason: 'bid_too_low', minimumBid: 100 });
    expect(belowStart).not.toHaveProperty('highestBid');
    expect(over).toMatchObject({ accepted: false, reason: 'auction_ended' });
    expect(closed).toMatchObject({ accepted: false, reason: 'auction_closed' });
    expect(unknown).toEqual({ accepted: false, auctionId: 'a-nowhere', reason: 'auction_not_found' });
    expect(await auction('a-refuse')).toMatchObject({ highestBid: '200', highestBidder: 'alice', endsAt: String(endsAt) });
    expect(await history('a-refuse')).toEqual([]);
    expect(await auctions.client.exists('auction:{a-nowhere}')).toBe(0);
  });

  it('a malformed bid fails the run (502, exit code 2) and says what is wrong', async () => {
    await seedAuction('a-malformed', 60_000);
    const res = await hook('bid-placed', JSON.stringify({ auctionId: 'a-malformed', bidder: 'mallory', amount: '999' }));
    expect(res.status).toBe(502);
    const body = (await res.json()) as { id: string; status: string; reason: string };
    expect(body).toMatchObject({ status: 'failed' });
    expect(body.reason).toMatch(/exit code 2/);
    const run = await daemon.waitForEnd(body.id);
    expect(run.logTail).toContain('invalid bid: amount must be a positive whole number in minor units (cents), got "999"');
    const notJson = await hook('bid-placed', '{"auctionId": "a-malformed", amount: 1}');
    expect(notJson.status).toBe(502);
    expect((await daemon.waitForEnd(((await notJson.json()) as { id: string }).id)).logTail).toContain(
      'invalid bid: the payload is not JSON',
    );
    expect(await auction('a-malformed')).not.toHaveProperty('highestBid');
  });

  it('bids at once: each is checked against the one before, the highest wins, and endsAt is the last accepted bid’s', async () => {
    await seedAuction('a-race', 20_000);
    // 8 concurrent runs (concurrency: 8); the order they reach Redis in is up to the race.
    const amounts = [130, 160, 110, 150, 120, 140, 115, 155];
    const answers = await Promise.all(amounts.map((a) => bid('a-race', a)));
    const accepted = answers.filter((a): a is Accepted => a.accepted);
    for (const a of answers) if (!a.accepted) expect(a.reason).toBe('bid_too_low');
    const state = await auction('a-race');
    expect(state).toMatchObject({ highestBid: '160', highestBidder: 'bidder-160' });
    const log = await history('a-race');
    expect(log.map((b) => Number(b.amount))).toEqual(accepted.map((a) => a.highestBid).sort((x, y) => x - y));
    // Each accepted bid beat the previous one by the minimum increment, and the end time
    // only moved forwards, to the last accepted bid's.
    for (let i = 1; i < log.length; i++) {
      expect(Number(log[i]!.amount)).toBeGreaterThanOrEqual(Number(log[i - 1]!.amount) + MIN_INCREMENT);
      expect(Number(log[i]!.endsAt)).toBeGreaterThanOrEqual(Number(log[i - 1]!.endsAt));
    }
    expect(log.every((b) => b.extended)).toBe(true);
    expect(state.endsAt).toBe(log.at(-1)!.endsAt);
    expect(Math.max(...accepted.map((a) => Date.parse(a.endsAt)))).toBe(Number(state.endsAt));
    expect(accepted.find((a) => a.highestBid === 160)?.endsAt).toBe(new Date(Number(state.endsAt)).toISOString());
    // The runs did overlap: the script, not runlet's queue, is what kept the bids in order.
    // Listings carry no payloads (they are kept apart): each run is read with its own.
    const listed = await daemon.store.list({ task: 'bid-placed', limit: 500 });
    const runs = (
      await daemon.store.getMany(
        listed.map((r) => r.id),
        { withPayload: true },
      )
    ).filter((r): r is NonNullable<typeof r> => typeof r?.payload === 'string' && r.payload.includes('"a-race"'));
    expect(runs).toHaveLength(amounts.length);
    const overlapping = runs.filter((r) => runs.some((o) => o !== r && o.startedAt! < r.finishedAt! && r.startedAt! < o.finishedAt!));
    expect(overlapping.length).toBeGreaterThanOrEqual(2);
  });
});

interface ProducerLine {
  event: string;
  id: string;
  returnvalue?: { runId: string; status: string; output?: unknown };
  failedReason?: string;
}

/** test/fixtures/queue-producer.mjs: a plain BullMQ producer in a process of its own. */
function produce(spec: object): Promise<ProducerLine[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'queue-producer.mjs'), JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) =>
      code === 0
        ? resolve(
            out
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l) as ProducerLine),
          )
        : reject(new Error(`producer exited with ${code}: ${err}`)),
    );
  });
}

describe('bid-placed from a BullMQ queue', () => {
  it("the job's return value carries the task's answer, and Redis shows the bid", async () => {
    await seedAuction('a-queued', 45_000);
    const lines = await produce({
      connection: { path: runletRedis.path },
      queue: 'bids',
      jobs: [
        { id: 'bid-q-1', data: { auctionId: 'a-queued', bidder: 'carol', amount: 300 } },
        { id: 'bid-q-bad', data: { auctionId: 'a-queued', bidder: 'carol' } },
      ],
    });
    const done = new Map(lines.filter((l) => l.event === 'completed' || l.event === 'failed').map((l) => [l.id, l]));
    const ok = done.get('bid-q-1');
    expect(ok?.event).toBe('completed');
    expect(ok?.returnvalue).toMatchObject({
      status: 'succeeded',
      output: { accepted: true, auctionId: 'a-queued', highestBid: 300, extended: true },
    });
    const { endsAt } = ok!.returnvalue!.output as Accepted;
    expect(await auction('a-queued')).toMatchObject({ highestBid: '300', highestBidder: 'carol', endsAt: String(Date.parse(endsAt)) });
    expect(done.get('bid-q-bad')).toMatchObject({ event: 'failed', failedReason: expect.stringMatching(/ended failed: exit code 2/) });
  });
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('latency from event to effect', () => {
  let sub: Redis;
  beforeAll(async () => {
    sub = new Redis({ port: auctions.port });
    await sub.subscribe('auction:a-latency:bids');
  });
  afterAll(() => sub?.disconnect());

  it('a webhook bid is in Redis and answered within a small multiple of a trivial busybox run triggered the same way', async () => {
    await seedAuction('a-latency', 30_000);
    const published: number[] = [];
    sub.on('message', () => published.push(performance.now()));
    const timeBaseline = async () => {
      const t0 = performance.now();
      const res = await hook('baseline', `{"n":${++deliveries}}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      return performance.now() - t0;
    };
    let amount = 100;
    const timeBid = async () => {
      const seen = published.length;
      const t0 = performance.now();
      const answer = await bid('a-latency', (amount += MIN_INCREMENT));
      const answered = performance.now() - t0;
      expect(answer.accepted).toBe(true);
      // The PUBLISH is part of the script that applied the bid: its arrival is the effect.
      while (published.length === seen) await new Promise((r) => setTimeout(r, 1));
      return { answered, effect: published[seen]! - t0 };
    };
    // The first run of each warms the image and the daemon's paths; not measured.
    await timeBaseline();
    await timeBid();
    const base: number[] = [];
    const bids: { answered: number; effect: number }[] = [];
    for (let i = 0; i < 5; i++) {
      base.push(await timeBaseline());
      bids.push(await timeBid());
    }
    const baseMs = median(base);
    const effectMs = median(bids.map((b) => b.effect));
    const answerMs = median(bids.map((b) => b.answered));
    const figures = {
      baselineAnswerMs: Math.round(baseMs),
      bidEffectMs: Math.round(effectMs),
      bidAnswerMs: Math.round(answerMs),
      effectRatio: +(effectMs / baseMs).toFixed(2),
      answerRatio: +(answerMs / baseMs).toFixed(2),
    };
    console.log(`[bid-placed latency, medians of 5] ${JSON.stringify(figures)}`);
    // A node process that connects to Redis costs more than `true`, but the container
    // start dominates both: the bid must stay within a small multiple of the baseline.
    expect(effectMs).toBeLessThan(answerMs);
    expect(figures.answerRatio).toBeLessThan(2.5);
  });
});

describe('bid-placed served as a warm function (http: + warm: 2)', () => {
  const ready = () => daemon.logs.lines.filter((l) => l.msg === 'warm instance ready for a run' && l.task === 'bid-fn').length;
  const post = async (body: unknown) => {
    const t0 = performance.now();
    const res = await fetch(`${daemon.fnUrl}/bids`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as Answer & { message?: string };
    return { status: res.status, runId: res.headers.get('x-runlet-run-id')!, answer, ms: performance.now() - t0 };
  };

  it('answers a bid from a warm instance, faster than a cold run of the same image through the webhook; a malformed bid is 400', async () => {
    await seedAuction('a-fn', 30_000);
    const deadline = Date.now() + 30_000;
    while (ready() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(ready()).toBeGreaterThanOrEqual(2);
    let amount = 100;
    const warmMs: number[] = [];
    const coldMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      // Each warm request waits for the replacement of the instance the last one used.
      const before = ready();
      const res = await post({ auctionId: 'a-fn', bidder: 'fn', amount: (amount += MIN_INCREMENT) });
      expect(res.status, JSON.stringify(res.answer)).toBe(200);
      expect(res.answer).toMatchObject({ accepted: true, auctionId: 'a-fn', highestBid: amount });
      const rec = await daemon.store.get(res.runId);
      expect(rec?.status).toBe('succeeded');
      warmMs.push(res.ms);
      const t0 = performance.now();
      const cold = await bid('a-fn', (amount += MIN_INCREMENT));
      coldMs.push(performance.now() - t0);
      expect(cold.accepted).toBe(true);
      const until = Date.now() + 30_000;
      while (ready() <= before && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    }
    const figures = { warmFunctionMs: Math.round(median(warmMs)), coldWebhookMs: Math.round(median(coldMs)) };
    console.log(`[bid-placed as a warm function, medians of 3] ${JSON.stringify(figures)}`);
    expect(figures.warmFunctionMs).toBeLessThan(figures.coldWebhookMs);

    const bad = await post({ auctionId: 'a-fn', bidder: 'fn', amount: -1 });
    expect(bad.status).toBe(400);
    expect(bad.answer.message).toMatch(/amount must be a positive whole number/);
  });
});
