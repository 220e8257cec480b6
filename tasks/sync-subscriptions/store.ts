import { Redis } from 'ioredis';

/**
 * Where subscriptions live, behind the few calls the sync needs. This example keeps them in
 * Redis (see README.md for the layout); an application points an implementation of
 * SubscriptionStore at its own database instead.
 */

export interface Subscription {
  readonly id: string;
  readonly userId: string;
  /** `appstore` or `play`; anything else is recorded as a failed check. */
  readonly provider: string;
  readonly productId: string;
  readonly originalTransactionId?: string;
  readonly purchaseToken?: string;
  readonly status?: string;
  /** ISO 8601. */
  readonly expiresAt?: string;
}

/** What a store API says about a subscription now. */
export interface CheckResult {
  readonly status: string;
  /** ISO 8601; absent when the store gives none. */
  readonly expiresAt?: string;
}

export type RecordOutcome = 'updated' | 'unchanged' | 'gone';

export interface SubscriptionStore {
  /** Up to `limit` subscriptions whose next check is due at or before `dueByMs`, soonest first. */
  due(dueByMs: number, limit: number): Promise<Subscription[]>;
  /** Saves the answer and when to check next, as one change; says whether status or expiry changed. */
  recordCheck(id: string, result: CheckResult, checkedAtMs: number, nextCheckAtMs: number): Promise<RecordOutcome>;
  /** Keeps the subscription as it was, notes why the check failed, and when to try again. */
  recordFailure(id: string, reason: string, nextCheckAtMs: number): Promise<void>;
  close(): Promise<void>;
}

const DUE = 'subs:due';
const subKey = (id: string) => `sub:${id}`;

/**
 * Saves a check, or drops an index entry whose subscription was deleted meanwhile (never
 * re-creating it by writing fields).
 *   KEYS[1] sub:<id>   hash: status, expiresAt, checkedAt, lastError, ...
 *   KEYS[2] subs:due   zset: subscription id → next check time (ms)
 *   ARGV    id, status, expiresAt ('' = none), checkedAt (ISO), nextCheckAtMs
 *   returns 1 status or expiresAt changed, 0 unchanged, -1 subscription gone (removed from subs:due)
 */
const RECORD_CHECK = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return -1
end
local before = redis.call('HMGET', KEYS[1], 'status', 'expiresAt')
local changed = (before[1] or '') ~= ARGV[2] or (before[2] or '') ~= ARGV[3]
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'checkedAt', ARGV[4])
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], 'expiresAt') else redis.call('HSET', KEYS[1], 'expiresAt', ARGV[3]) end
redis.call('HDEL', KEYS[1], 'lastError', 'lastErrorAt')
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
if changed then return 1 end
return 0
`;

/**
 * Notes a failed check and when to retry it, leaving status and expiry as they were.
 *   KEYS[1] sub:<id>, KEYS[2] subs:due
 *   ARGV    id, reason, failedAt (ISO), nextCheckAtMs
 *   returns 1 recorded, -1 subscription gone (removed from subs:due)
 */
const RECORD_FAILURE = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return -1
end
redis.call('HSET', KEYS[1], 'lastError', ARGV[2], 'lastErrorAt', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
`;

export class RedisSubscriptionStore implements SubscriptionStore {
  private readonly redis: Redis;

  constructor(url: string) {
    // A Redis that is down should end the run with its error, not stall it until the timeout.
    this.redis = new Redis(url, {
      maxRetriesPerRequest: 2,
      connectTimeout: 5000,
      retryStrategy: (times) => (times > 5 ? null : 200 * times),
    });
  }

  async due(dueByMs: number, limit: number): Promise<Subscription[]> {
    const ids = await this.redis.zrangebyscore(DUE, '-inf', dueByMs, 'LIMIT', 0, limit);
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(subKey(id));
    const rows = (await pipe.exec()) ?? [];
    const subs: Subscription[] = [];
    const ghosts: string[] = [];
    for (const [i, id] of ids.entries()) {
      const [err, row] = rows[i] ?? [];
      if (err) throw err;
      const h = row as Record<string, string>;
      // An index entry without its hash (deleted without ZREM) would come back on every
      // page, since paging takes the head of subs:due: drop it. Writers create the hash
      // before the index entry (or both in one MULTI), so this never races a new one.
      if (Object.keys(h).length === 0) {
        ghosts.push(id);
        continue;
      }
      subs.push({
        id,
        userId: h.userId ?? '',
        provider: h.provider ?? '',
        productId: h.productId ?? '',
        originalTransactionId: h.originalTransactionId || undefined,
        purchaseToken: h.purchaseToken || undefined,
        status: h.status || undefined,
        expiresAt: h.expiresAt || undefined,
      });
    }
    if (ghosts.length > 0) {
      await this.redis.zrem(DUE, ...ghosts);
      // A page of nothing but ghosts is not the end of what is due.
      if (subs.length === 0) return this.due(dueByMs, limit);
    }
    return subs;
  }

  async recordCheck(id: string, result: CheckResult, checkedAtMs: number, nextCheckAtMs: number): Promise<RecordOutcome> {
    const r = await this.redis.eval(
      RECORD_CHECK,
      2,
      subKey(id),
      DUE,
      id,
      result.status,
      result.expiresAt ?? '',
      new Date(checkedAtMs).toISOString(),
      nextCheckAtMs,
    );
    return r === 1 ? 'updated' : r === 0 ? 'unchanged' : 'gone';
  }

  async recordFailure(id: string, reason: string, nextCheckAtMs: number): Promise<void> {
    await this.redis.eval(RECORD_FAILURE, 2, subKey(id), DUE, id, reason, new Date().toISOString(), nextCheckAtMs);
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => undefined);
  }
}
