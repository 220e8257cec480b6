import { performance } from 'node:perf_hooks';
import { log } from '../lib/task.js';

/**
 * How this task talks to a store API: every request (retries included) waits its turn at
 * the provider's rate limiter, and 429/5xx answers and network errors are retried with
 * backoff until the attempts run out.
 */

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * At most `perWindow` requests in any `windowMs`, as the provider counts them, whatever the
 * network does: a request holds its slot until its answer (or error) arrives, and the slot
 * is free again only a whole window after that. The provider received the request before
 * it answered, so any two requests `perWindow` apart reach it at least a window apart.
 * (Spacing sends by the clock alone can't promise that: one slow connection set-up and two
 * requests arrive closer together than they were sent.) A 429's Retry-After pauses the
 * whole provider, since the store counts our account, not one subscription.
 */
export class RateLimiter {
  /** When each slot may be used again; Infinity while its request is in flight. */
  private readonly freeAt: number[];
  private pausedUntil = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private wake: () => void = () => undefined;

  constructor(
    perWindow: number,
    private readonly windowMs: number,
  ) {
    this.freeAt = Array<number>(perWindow).fill(0);
  }

  /** `rps` as whole requests per window: 10 → 10 per second, 2.5 → 2 per 800 ms, 0.5 → 1 per 2 s. */
  static perSecond(rps: number): RateLimiter {
    const perWindow = Math.max(1, Math.floor(rps));
    return new RateLimiter(perWindow, (1000 * perWindow) / rps);
  }

  /** Resolves, first come first served, when the caller may send; call the function it gives once answered. */
  acquire(): Promise<() => void> {
    const turn = this.queue.then(async () => {
      // Re-checked after each wait: a 429 may have paused the provider meanwhile.
      for (;;) {
        let slot = 0;
        for (let i = 1; i < this.freeAt.length; i++) if (this.freeAt[i]! < this.freeAt[slot]!) slot = i;
        const at = Math.max(this.freeAt[slot]!, this.pausedUntil);
        if (at === Infinity) {
          // Only the head of the queue waits here; a release can only free a slot later than now.
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        const now = performance.now();
        if (now >= at) {
          this.freeAt[slot] = Infinity;
          return slot;
        }
        await sleep(at - now);
      }
    });
    this.queue = turn;
    return turn.then((slot) => () => {
      this.freeAt[slot] = performance.now() + this.windowMs;
      this.wake();
    });
  }

  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, performance.now() + ms);
  }
}

/** A lookup that did not get an answer to use; `reason` says why, for the log and the record. */
export class LookupFailed extends Error {}

export interface RetryPolicy {
  /** Requests in all for one lookup, the first included. */
  readonly attempts: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** A Retry-After longer than this gives up at once rather than hold the whole run. */
  readonly maxRetryAfterMs: number;
  readonly requestTimeoutMs: number;
}

export interface ProviderClientOptions {
  readonly provider: string;
  readonly baseUrl: string;
  readonly rps: number;
  readonly bearer?: string;
  readonly retry: RetryPolicy;
  /** Called for every 429 answer (the run's `throttled` count). */
  readonly onThrottled: () => void;
}

export class ProviderClient {
  private readonly limiter: RateLimiter;

  constructor(private readonly opts: ProviderClientOptions) {
    this.limiter = RateLimiter.perSecond(opts.rps);
  }

  /** GETs `path` and parses the JSON answer; throws LookupFailed once retrying is pointless or used up. */
  async getJson(path: string): Promise<unknown> {
    const { retry, provider } = this.opts;
    const url = `${this.opts.baseUrl.replace(/\/+$/, '')}${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.bearer) headers.authorization = `Bearer ${this.opts.bearer}`;
    let last = '';
    for (let attempt = 1; attempt <= retry.attempts; attempt++) {
      const release = await this.limiter.acquire();
      let res: Response;
      try {
        res = await fetch(url, { headers, signal: AbortSignal.timeout(retry.requestTimeoutMs) });
      } catch (err) {
        release();
        last = `request failed: ${(err as Error).message}`;
        if (attempt < retry.attempts) await sleep(backoffMs(attempt, retry));
        continue;
      }
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      const tooLong = retryAfterMs !== undefined && retryAfterMs > retry.maxRetryAfterMs;
      // Paused before the slot is released, so no other lookup slips in between.
      if (res.status === 429 && retryAfterMs !== undefined && !tooLong) this.limiter.pauseFor(retryAfterMs);
      release();
      if (res.ok) {
        try {
          return await res.json();
        } catch {
          throw new LookupFailed(`${provider} answered ${res.status} with a body that is not JSON`);
        }
      }
      await res.arrayBuffer().catch(() => undefined);
      last = `${provider} answered ${res.status}`;
      if (res.status === 429) this.opts.onThrottled();
      if (res.status !== 429 && res.status < 500) throw new LookupFailed(last);
      if (attempt === retry.attempts) break;
      if (tooLong)
        throw new LookupFailed(`${last} with Retry-After ${retryAfterMs} ms, longer than MAX_RETRY_AFTER_MS (${retry.maxRetryAfterMs})`);
      // Never earlier than Retry-After (for a 429 the provider's pause enforces it too); the
      // jitter spreads the lookups that all waited for the same instant.
      const waitMs = retryAfterMs !== undefined ? retryAfterMs + Math.random() * retry.backoffBaseMs : backoffMs(attempt, retry);
      log('retrying', { provider, status: res.status, attempt, waitMs: Math.round(waitMs) });
      await sleep(waitMs);
    }
    throw new LookupFailed(`gave up after ${retry.attempts} attempts: ${last}`);
  }
}

/** "Full jitter" (AWS architecture blog): uniform in [0, min(max, base × 2^(attempt-1))], so retries don't stampede. */
function backoffMs(attempt: number, retry: RetryPolicy): number {
  return Math.random() * Math.min(retry.backoffMaxMs, retry.backoffBaseMs * 2 ** (attempt - 1));
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
