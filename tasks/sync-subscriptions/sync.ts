import { log } from '../lib/task.js';
import { LookupFailed } from './http.js';
import type { Provider } from './providers.js';
import type { CheckResult, Subscription, SubscriptionStore } from './store.js';

export interface Counts {
  checked: number;
  updated: number;
  unchanged: number;
  failed: number;
  throttled: number;
}

export interface SyncOptions {
  readonly store: SubscriptionStore;
  readonly providers: Readonly<Record<string, Provider>>;
  readonly batchSize: number;
  readonly maxPages: number;
  /** Longest wait until the next check, whatever the expiry. */
  readonly checkIntervalMs: number;
  /** Shortest wait until the next check; > 0, or a page could come back at once. */
  readonly recheckMinMs: number;
  /** When to try a failed check again. */
  readonly failedRecheckMs: number;
  /** The 429 count lives in the provider clients; read it once at the end. */
  readonly throttled: () => number;
}

/**
 * Checks what is due, page by page, each page's lookups in parallel (each provider's rate
 * limiter orders them). Every page is the head of the due list as of the run's start:
 * each subscription checked, failed or not, is rescheduled past that instant, so it leaves
 * the range and the next head is the next page, with no cursor to keep.
 */
export async function syncDue(opts: SyncOptions): Promise<Counts> {
  const counts: Counts = { checked: 0, updated: 0, unchanged: 0, failed: 0, throttled: 0 };
  const dueBy = Date.now();
  let pages = 0;
  for (; pages < opts.maxPages; pages++) {
    const page = await opts.store.due(dueBy, opts.batchSize);
    if (page.length === 0) break;
    await Promise.all(page.map((sub) => checkOne(sub, opts, counts)));
    log('page checked', { page: pages + 1, size: page.length });
  }
  if (pages === opts.maxPages && (await opts.store.due(dueBy, 1)).length > 0) {
    log('more subscriptions are due than MAX_PAGES × BATCH_SIZE; the next run goes on', {
      maxPages: opts.maxPages,
      batchSize: opts.batchSize,
    });
  }
  counts.throttled = opts.throttled();
  return counts;
}

async function checkOne(sub: Subscription, opts: SyncOptions, counts: Counts): Promise<void> {
  counts.checked++;
  let result: CheckResult;
  try {
    const provider = opts.providers[sub.provider];
    if (!provider) throw new LookupFailed(`unknown provider ${JSON.stringify(sub.provider)} (expected appstore or play)`);
    result = await provider.lookup(sub);
  } catch (err) {
    // Only a lookup problem is this subscription's failure; anything else (the store is
    // down, a bug) ends the run, which runlet records and alerts on.
    if (!(err instanceof LookupFailed)) throw err;
    counts.failed++;
    log('check failed', { subscription: sub.id, provider: sub.provider, reason: err.message });
    await opts.store.recordFailure(sub.id, err.message, Date.now() + opts.failedRecheckMs);
    return;
  }
  const now = Date.now();
  const outcome = await opts.store.recordCheck(sub.id, result, now, nextCheckAt(result, now, opts));
  if (outcome === 'updated') {
    counts.updated++;
    log('subscription updated', {
      subscription: sub.id,
      userId: sub.userId,
      from: { status: sub.status, expiresAt: sub.expiresAt },
      to: result,
    });
  } else {
    // 'gone': deleted while we asked the store; nothing to update either.
    counts.unchanged++;
  }
}

/**
 * A subscription changes at its expiry (renewed, lapsed, into grace), so look again then,
 * but at least daily (refunds and cancellations come at any time) and not sooner than the
 * minimum (an expiry in the past would otherwise mean "now", again and again).
 */
export function nextCheckAt(result: CheckResult, nowMs: number, opts: Pick<SyncOptions, 'checkIntervalMs' | 'recheckMinMs'>): number {
  const latest = nowMs + opts.checkIntervalMs;
  const expiry = result.expiresAt ? Date.parse(result.expiresAt) : Number.NaN;
  if (Number.isNaN(expiry)) return latest;
  return Math.min(latest, Math.max(nowMs + opts.recheckMinMs, expiry));
}
