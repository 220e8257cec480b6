import type { Redis } from 'ioredis';
import { streamKeys } from './keys.js';

export const DEFAULT_LEASE_MS = 15_000;

/**
 * Acquire: KEYS[1] lease, KEYS[2] fence; ARGV[1] holder id, ARGV[2] lease ms.
 * Returns { 1, fence } when acquired (the fence INCR'd, the lease set to "holder|fence"
 * with SET NX PX), or { 0, pttl } when someone holds it (its remaining ms).
 * One script so that no two holders can ever get the same fence.
 */
const ACQUIRE = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl ~= -2 then return {0, ttl} end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. fence, 'NX', 'PX', ARGV[2])
return {1, fence}
`;

/** Renew: KEYS[1] lease; ARGV[1] "holder|fence", ARGV[2] lease ms. Returns 1 renewed, 0 not ours. */
const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * Release: KEYS[1] lease, KEYS[2] state hash; ARGV[1] "holder|fence".
 * Returns 1 released, 0 not ours. A stream left "watching" is marked waiting; an error stays.
 */
const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[2], 'state') == 'watching' then redis.call('HSET', KEYS[2], 'state', 'waiting', 'holder', '') end
return 1
`;

export type Acquired = { fence: number } | { retryInMs: number };

/**
 * The right to consume one task's change stream: at most one holder at a time, each with a
 * fence larger than every earlier holder's. The lease only limits duplicate work; safety
 * comes from the fence, which the cursor checks on every write (cursor.ts).
 */
export class StreamLease {
  constructor(
    private readonly redis: Redis,
    private readonly task: string,
    private readonly holder: string,
    readonly leaseMs = DEFAULT_LEASE_MS,
  ) {}

  async tryAcquire(): Promise<Acquired> {
    const [got, n] = (await this.redis.eval(ACQUIRE, 2, streamKeys.lease(this.task), streamKeys.fence(this.task), this.holder, this.leaseMs)) as [number, number];
    if (got === 1) return { fence: n };
    // -1: a lease without expiry (set by hand); look again after a renew interval.
    return { retryInMs: n > 0 ? n : this.leaseMs / 3 };
  }

  /** Starts renewing every third of the lease; the returned handle says when it is lost. */
  hold(fence: number): HeldLease {
    return new HeldLease(this.redis, this.task, `${this.holder}|${fence}`, fence, this.leaseMs);
  }
}

export class HeldLease {
  private readonly lost = new AbortController();
  private timer?: NodeJS.Timeout;
  private lastRenewedAt = Date.now();
  private stopped = false;

  constructor(
    private readonly redis: Redis,
    private readonly task: string,
    private readonly value: string,
    readonly fence: number,
    private readonly leaseMs: number,
  ) {
    this.schedule();
  }

  /** Aborted (reason: why) as soon as this holder must stop consuming. */
  get signal(): AbortSignal {
    return this.lost.signal;
  }

  get isLost(): boolean {
    return this.lost.signal.aborted;
  }

  lose(why: string): void {
    this.halt();
    if (!this.lost.signal.aborted) this.lost.abort(why);
  }

  /** Stops renewing and leaves the lease to expire, as a dead process would. */
  halt(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Stops renewing and deletes the lease if it is still ours, so another daemon takes over at once. */
  async release(): Promise<void> {
    this.halt();
    await this.redis.eval(RELEASE, 2, streamKeys.lease(this.task), streamKeys.state(this.task), this.value).catch(() => undefined);
    if (!this.lost.signal.aborted) this.lost.abort('released');
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.renew(), this.leaseMs / 3);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const ok = await this.redis.eval(RENEW, 1, streamKeys.lease(this.task), this.value, this.leaseMs).then(
      (r) => r === 1,
      () => undefined,
    );
    if (this.stopped) return;
    if (ok === true) this.lastRenewedAt = Date.now();
    else if (ok === false) return this.lose('the lease was taken over or reset');
    // Redis did not answer: keep trying, but give up a third of a lease before it can have
    // expired, so this holder has stopped before anyone else can start.
    else if (Date.now() - this.lastRenewedAt >= (this.leaseMs * 2) / 3) return this.lose('the lease could not be renewed (Redis unreachable)');
    this.schedule();
  }
}

/** The current holder as the ops API shows it; undefined when no one holds the lease. */
export async function readLease(redis: Redis, task: string): Promise<{ holder: string; fence: number; expiresInMs: number } | undefined> {
  const [[, value], [, ttl]] = (await redis.multi().get(streamKeys.lease(task)).pttl(streamKeys.lease(task)).exec()) as [[null, string | null], [null, number]];
  if (!value) return undefined;
  const at = value.lastIndexOf('|');
  return { holder: value.slice(0, at), fence: Number(value.slice(at + 1)), expiresInMs: ttl };
}
