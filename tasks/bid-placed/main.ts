import { existsSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { log, output, run, setting, TaskError } from '../lib/task.js';
import { placeBid } from './auction.js';
import { parseBid } from './bid.js';

// bid-placed: validates a new bid and applies it to its auction in Redis, extending the
// end time when it lands in the last window (anti-sniping). Settings: see README.md.
//
// Outcomes: a malformed bid fails the run (exit 2: the sender has a bug, and the failure
// shows up in runs, alerts, a webhook's 502 and a queue job's failedReason). A well-formed
// bid the auction refuses (too low, auction over) is an ordinary answer: the run succeeds
// with { accepted: false, reason }, as losing a race to a higher bid is no fault of anyone's.

function whole(name: string, fallback: string, min: number): number {
  const text = setting(name, fallback);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new TaskError(`${name} must be a whole number ≥ ${min}, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * Served as an HTTP function (`http:` in runlet.yaml), the payload is API Gateway's event
 * (payload format 2.0): the bid is its body, and the answer a proxy response.
 */
function httpEvent(text: string | undefined): { body: string } | undefined {
  if (text === undefined) return undefined;
  let e: unknown;
  try {
    e = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof e !== 'object' || e === null) return undefined;
  const { version, routeKey, body, isBase64Encoded } = e as Record<string, unknown>;
  if (version !== '2.0' || typeof routeKey !== 'string') return undefined;
  const raw = typeof body === 'string' ? body : '';
  return { body: isBase64Encoded === true ? Buffer.from(raw, 'base64').toString('utf8') : raw };
}

const answer = (statusCode: number, value: unknown) => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(value),
});

run(async () => {
  // The payload exactly as sent (a webhook body, or a queue job's data as JSON); read as
  // text here so that a body that is not JSON is reported as the sender's mistake.
  const file = process.env.RUNLET_PAYLOAD_FILE;
  const text = file && existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  const event = httpEvent(text);
  let bid;
  try {
    bid = parseBid(event ? event.body : text);
  } catch (err) {
    // A function answers a malformed bid with 400, as an API does; other triggers fail the run.
    if (!event || !(err instanceof TaskError)) throw err;
    output(answer(400, { message: err.message }));
    return;
  }
  const windowMs = whole('SNIPING_WINDOW_MS', '60000', 0);
  const minIncrement = whole('MIN_INCREMENT', '1', 1);
  // Fail fast when Redis is unreachable: a webhook caller is waiting for the answer.
  const redis = new Redis(setting('AUCTION_REDIS_URL'), {
    maxRetriesPerRequest: 1,
    connectTimeout: 3000,
    retryStrategy: (times) => (times > 2 ? null : 100),
  });
  try {
    const result = await placeBid(redis, bid, {
      windowMs,
      minIncrement,
      bidId: process.env.RUNLET_RUN_ID ?? '',
      resultTtlMs: whole('RESULT_TTL_MS', String(24 * 3600_000), 1),
    });
    log(result.accepted ? 'bid accepted' : 'bid refused', { ...result, bidder: bid.bidder, amount: bid.amount });
    output(event ? answer(200, result) : result);
  } finally {
    redis.disconnect();
  }
});
