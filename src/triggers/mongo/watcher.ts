import type { Logger } from 'pino';
import type { TaskConfig } from '../../config/types.js';
import type { Trigger, TriggerDeps } from '../types.js';
import { StreamCursor, tokenKey } from './cursor.js';
import { StreamLease, type HeldLease } from './lease.js';
import { changeRequest } from './payload.js';
import { HistoryLost, Invalidated, isCheckpoint, type ChangeEvent, type ChangeSource } from './source.js';
import { StreamState } from './state.js';

export const UNCONFIGURED_REASON = "mongo.url is empty (MONGO_URL unset?): this task's change stream is not watched";
const FENCE_MOVED = 'a newer holder (or a reset) moved the fence';

export interface WatcherOptions {
  /** How long a dead holder keeps the stream (default 15 s); renewed every third of it. */
  readonly leaseMs?: number;
  /** Reopening after a transient failure waits this long, doubling up to backoffMaxMs. */
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  /** After an invalidate, the stream is opened again (past it) this much later (default 5 min). */
  readonly invalidatedRetryMs?: number;
}

export type WatcherDeps = Pick<TriggerDeps, 'submit' | 'redis' | 'logger' | 'identity'>;

/**
 * One task's change stream, consumed by at most one daemon at a time. MongoDB stays behind
 * `ChangeSource`; everything here is the lease, the cursor and the dedupe, on Redis.
 *
 *   wait for the lease → open after the stored token → per change: submit, then store its
 *   token (fenced) → on losing the lease, stop at once and wait again.
 *
 * Failures never crash-loop: transient ones reopen from the stored token with backoff
 * (1 s → 60 s); an invalidate is reported and retried past it every 5 min; history lost is
 * reported and the stream stays stopped until POST /api/streams/:task/reset.
 */
export class StreamWatcher implements Trigger {
  readonly name: string;
  private readonly stopping = new AbortController();
  private readonly log: Logger;
  private readonly lease: StreamLease;
  private readonly cursor: StreamCursor;
  private readonly state: StreamState;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  private readonly invalidatedRetryMs: number;
  private loop?: Promise<void>;
  private halted = false;
  /** Changes handled since the feed was last opened (a feed that made progress resets the backoff). */
  private handled = 0;

  constructor(
    private readonly deps: WatcherDeps,
    private readonly task: TaskConfig,
    /** undefined when mongo.url is empty: the stream is reported as unconfigured. */
    private readonly source: ChangeSource | undefined,
    opts: WatcherOptions = {},
  ) {
    const m = task.mongo;
    if (!m) throw new Error(`task "${task.name}" has no mongo: trigger`);
    this.name = `mongo ${m.db}.${m.collection} → ${task.name}`;
    this.log = deps.logger.child({ trigger: 'mongo', task: task.name, stream: `${m.db}.${m.collection}` });
    this.lease = new StreamLease(deps.redis, task.name, deps.identity.daemonId, opts.leaseMs);
    this.cursor = new StreamCursor(deps.redis, task.name);
    this.state = new StreamState(deps.redis, task.name);
    this.backoffMinMs = opts.backoffMinMs ?? 1_000;
    this.backoffMaxMs = opts.backoffMaxMs ?? 60_000;
    this.invalidatedRetryMs = opts.invalidatedRetryMs ?? 5 * 60_000;
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  async start(): Promise<void> {
    if (!this.source) {
      // A state, not a failure: the example config loads without MongoDB. Said once, never retried.
      await this.state.writeUnfenced({ state: 'unconfigured', holder: '', error: UNCONFIGURED_REASON, errorKind: '', errorAt: '' });
      this.log.warn({ reason: UNCONFIGURED_REASON }, 'change stream not configured');
      return;
    }
    // Not awaited: a daemon starts whether or not MongoDB (or the lease) is there.
    this.loop = this.run(this.source);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    await this.source?.close?.().catch((err) => this.log.warn({ err }, 'closing the MongoDB connection failed'));
  }

  /**
   * Stops as a killed process would: no release and no last state write, so the lease
   * runs out by itself. For tests of takeover, and nothing else.
   */
  async halt(): Promise<void> {
    this.halted = true;
    this.stopping.abort();
    await this.loop;
  }

  private async run(source: ChangeSource): Promise<void> {
    while (!this.stopped) {
      const fence = await this.acquire();
      if (fence === undefined) return;
      const held = this.lease.hold(fence);
      try {
        await this.whileHeld(held, source);
      } catch (err) {
        // Redis failing under us: let the lease go so a healthier daemon can take over.
        if (!this.stopped) this.log.error({ err }, 'change stream watcher failed; letting the lease go and trying again');
        await held.release();
        await pause(this.backoffMinMs, this.stopping.signal);
      }
      if (this.halted) return held.halt();
      if (this.stopped) return held.release();
      if (held.isLost) this.log.warn({ fence, why: String(held.signal.reason) }, 'lost the change stream lease: stopped consuming');
      held.halt();
    }
  }

  /** Polls just past the holder's expiry, so a dead holder is replaced within one lease period. */
  private async acquire(): Promise<number | undefined> {
    let told = false;
    while (!this.stopped) {
      const got = await this.lease.tryAcquire().catch((err: Error) => {
        this.log.warn({ err }, 'could not ask Redis for the change stream lease; retrying');
        return { retryInMs: this.lease.leaseMs / 3 };
      });
      if ('fence' in got) return got.fence;
      if (!told) this.log.debug('another daemon holds the change stream lease; waiting');
      told = true;
      await pause(Math.min(got.retryInMs + 20, this.lease.leaseMs / 3), this.stopping.signal);
    }
    return undefined;
  }

  private async whileHeld(held: HeldLease, source: ChangeSource): Promise<void> {
    const before = await this.state.read();
    if (before.state === 'error' && before.errorKind === 'historyLost') {
      // Sticky across holders: a new holder reopening the lost token would fail the same way.
      this.log.warn(
        { error: before.error },
        `change stream not watched: its history was lost earlier; POST /api/streams/${this.task.name}/reset to restart it from now`,
      );
      return pause(Infinity, held.signal, this.stopping.signal);
    }
    let failures = 0;
    while (!this.stopped && !held.isLost) {
      let failure: unknown;
      try {
        await this.consume(held, source);
        if (this.stopped || held.isLost) return;
        failure = new Error('the change stream ended');
      } catch (err) {
        if (this.stopped || held.isLost) return;
        failure = err;
      }
      failures = this.handled > 0 ? 1 : failures + 1;
      if (failure instanceof HistoryLost) return this.onHistoryLost(held, failure);
      if (failure instanceof Invalidated) await this.onInvalidated(held, failure);
      else await this.onTransient(held, failure, failures);
    }
  }

  private async consume(held: HeldLease, source: ChangeSource): Promise<void> {
    this.handled = 0;
    const from = await this.cursor.load();
    const feed = source.open(from);
    const close = () => void feed.close().catch(() => undefined);
    held.signal.addEventListener('abort', close);
    this.stopping.signal.addEventListener('abort', close);
    try {
      if (!(await this.state.write(held.fence, { state: 'watching', holder: this.deps.identity.daemonId, fence: held.fence, retryAt: '' })))
        return held.lose(FENCE_MOVED);
      this.log.info({ fence: held.fence, from: from === undefined ? 'now' : tokenKey(from) }, 'watching change stream');
      for await (const item of feed) {
        if (this.stopped || held.isLost) return;
        if (isCheckpoint(item)) {
          if (!(await this.cursor.store(held.fence, item.token))) return held.lose(FENCE_MOVED);
          continue;
        }
        await this.submit(item);
        // Exactly once, argued where the cursor moves:
        // - The token is stored only after submit resolved, i.e. after the run's record and
        //   dedupe claim are durable in Redis. A crash anywhere before this line leaves the
        //   previous token stored, so the next holder reopens before this change and submits
        //   it again: no change is lost.
        // - The dedupe key is this change's resume token, the same for every holder, so that
        //   second submit returns the first run instead of making another: none runs twice.
        // - The write is fenced: a holder deposed while it was submitting (paused, cut off)
        //   cannot move the cursor back over changes its successor stored; its late submit
        //   is one of the repeats the dedupe absorbs.
        // - Changes are handled one at a time in stream order, so the stored token never
        //   passes a change whose run is not recorded.
        if (!(await this.cursor.store(held.fence, item.token, { clusterTimeMs: item.clusterTime ? item.clusterTime.t * 1000 : undefined })))
          return held.lose(FENCE_MOVED);
        this.handled++;
      }
    } finally {
      held.signal.removeEventListener('abort', close);
      this.stopping.signal.removeEventListener('abort', close);
      await feed.close().catch(() => undefined);
    }
  }

  private async submit(event: ChangeEvent): Promise<void> {
    const { request, omitted } = changeRequest(this.task, event);
    if (omitted) this.log.warn({ dedupeKey: request.dedupeKey, operationType: event.operationType }, omitted);
    const res = await this.deps.submit(request);
    if (res.created) this.log.info({ runId: res.runId, operationType: event.operationType, skipped: res.skipped }, 'change made a run');
    else this.log.info({ runId: res.runId, dedupeKey: request.dedupeKey }, 'change already had its run (handed over twice); no new run');
  }

  private async onHistoryLost(held: HeldLease, err: HistoryLost): Promise<void> {
    const error = `${err.reason}. The changes after the stored resume token are no longer in the oplog, so resuming cannot work. POST /api/streams/${this.task.name}/reset restarts the stream from now (changes made in between make no runs)`;
    if (!(await this.state.write(held.fence, { state: 'error', errorKind: 'historyLost', error, errorAt: Date.now(), retryAt: '' })))
      return held.lose(FENCE_MOVED);
    this.log.error({ reason: err.reason }, 'change stream history lost: not watching until the stream is reset');
    // Held (and renewed) while stopped: another daemon taking over would only fail the same
    // way. A reset deletes the lease, which ends this pause at the next renew.
    await pause(Infinity, held.signal, this.stopping.signal);
  }

  private async onInvalidated(held: HeldLease, err: Invalidated): Promise<void> {
    // Every change before the invalidate is handled, so moving the cursor onto it loses
    // nothing, and the next open starts after it (startAfter) instead of meeting it again.
    if (err.token !== undefined && !(await this.cursor.store(held.fence, err.token))) return held.lose(FENCE_MOVED);
    const retryAt = Date.now() + this.invalidatedRetryMs;
    const error = `${err.reason}; runlet opens the stream again past the invalidation at ${new Date(retryAt).toISOString()} (or on POST /api/streams/${this.task.name}/reset)`;
    if (!(await this.state.write(held.fence, { state: 'error', errorKind: 'invalidated', error, errorAt: Date.now(), retryAt })))
      return held.lose(FENCE_MOVED);
    this.log.error({ reason: err.reason, retryInMs: this.invalidatedRetryMs }, 'change stream invalidated');
    await pause(this.invalidatedRetryMs, held.signal, this.stopping.signal);
  }

  private async onTransient(held: HeldLease, err: unknown, failures: number): Promise<void> {
    const delayMs = Math.min(this.backoffMaxMs, this.backoffMinMs * 2 ** Math.min(failures - 1, 30));
    const error = err instanceof Error ? err.message : String(err);
    if (
      !(await this.state.write(held.fence, {
        state: 'error',
        errorKind: 'transient',
        error,
        errorAt: Date.now(),
        retryAt: Date.now() + delayMs,
      }))
    )
      return held.lose(FENCE_MOVED);
    this.log.warn({ err, retryInMs: delayMs }, 'change stream failed; reopening from the stored resume token');
    await pause(delayMs, held.signal, this.stopping.signal);
  }
}

/** Resolves after `ms` (Infinity: never by itself) or as soon as any signal aborts. */
function pause(ms: number, ...signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    if (signals.some((s) => s.aborted)) return resolve();
    const done = () => {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener('abort', done);
      resolve();
    };
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
    for (const s of signals) s.addEventListener('abort', done, { once: true });
  });
}
