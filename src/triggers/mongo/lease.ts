import type { Redis } from 'ioredis';
import { registerScripts, ScriptCode } from '../../redis/scripts.js';
import { streamKeys } from '../../runs/keys.js';

export const DEFAULT_LEASE_MS = 15_000;

export type Acquired = { fence: number } | { retryInMs: number };

/**
 * The right to consume one task's change stream: at most one holder at a time, each with a
 * fence larger than every earlier holder's. The lease only limits duplicate work; safety
 * comes from the fence, which the cursor checks on every write (cursor.ts). Acquiring is
 * one script (acquireLease-2.lua) so that no two holders can ever get the same fence.
 */
export class StreamLease {
  constructor(
    private readonly redis: Redis,
    private readonly task: string,
    private readonly holder: string,
    readonly leaseMs = DEFAULT_LEASE_MS,
  ) {
    registerScripts(redis);
  }

  async tryAcquire(): Promise<Acquired> {
    const [got, n] = await this.redis.runletAcquireLease(
      streamKeys.lease(this.task),
      streamKeys.fence(this.task),
      this.holder,
      this.leaseMs,
    );
    if (got === ScriptCode.Applied) return { fence: n };
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
    await this.redis.runletReleaseLease(streamKeys.lease(this.task), streamKeys.state(this.task), this.value).catch(() => undefined);
    if (!this.lost.signal.aborted) this.lost.abort('released');
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.renew(), this.leaseMs / 3);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const ok = await this.redis.runletRenewLease(streamKeys.lease(this.task), this.value, this.leaseMs).then(
      (r) => r === ScriptCode.Applied,
      () => undefined,
    );
    if (this.stopped) return;
    if (ok === true) this.lastRenewedAt = Date.now();
    else if (ok === false) return this.lose('the lease was taken over or reset');
    // Redis did not answer: keep trying, but give up a third of a lease before it can have
    // expired, so this holder has stopped before anyone else can start.
    else if (Date.now() - this.lastRenewedAt >= (this.leaseMs * 2) / 3)
      return this.lose('the lease could not be renewed (Redis unreachable)');
    this.schedule();
  }
}

/** The current holder as the ops API shows it; undefined when no one holds the lease. */
export async function readLease(redis: Redis, task: string): Promise<{ holder: string; fence: number; expiresInMs: number } | undefined> {
  const [[, value], [, ttl]] = (await redis.multi().get(streamKeys.lease(task)).pttl(streamKeys.lease(task)).exec()) as [
    [null, string | null],
    [null, number],
  ];
  if (!value) return undefined;
  const at = value.lastIndexOf('|');
  return { holder: value.slice(0, at), fence: Number(value.slice(at + 1)), expiresInMs: ttl };
}
