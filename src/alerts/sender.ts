import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AlertRule } from '../config/types.js';
import type { RunletEvents } from '../runs/events.js';
import type { AlertBody } from './message.js';

/** One alert on its way to one rule's receiver. */
export interface Outgoing {
  /** Index of the rule under alerts:. */
  readonly rule: number;
  readonly body: AlertBody;
  /** Redis key that says this alert is being sent or was sent (see `claim`). */
  readonly marker: string;
  /** How long the "sent" marker is kept: longer than the same alert could come again. */
  readonly markerTtlMs: number;
  /** Called once the alert is out of this daemon's hands: sent, given up, dropped or sent by another. */
  readonly done?: () => void;
}

export interface SenderOptions {
  /** Alerts waiting per rule; beyond it the oldest is dropped. */
  readonly queueLimit?: number;
  /** First wait between attempts; doubles each time, up to backoffMaxMs. */
  readonly backoffMs?: number;
  readonly backoffMaxMs?: number;
}

const QUEUE_LIMIT = 500;
const BACKOFF_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

/** Longest one alert may take to deliver or give up, for the rule's timeout and attempts. */
export function deliveryBudgetMs(rule: AlertRule, backoffMs = BACKOFF_MS, backoffMaxMs = BACKOFF_MAX_MS): number {
  let waits = 0;
  for (let i = 0; i < rule.retries - 1; i++) waits += Math.min(backoffMs * 2 ** i, backoffMaxMs);
  return rule.retries * rule.timeoutMs + waits + 5_000;
}

/** Never the URL itself: a Slack webhook URL is its own secret. */
function host(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '?';
  }
}

/**
 * Posts alerts without ever holding up a run: callers push into a bounded queue in memory
 * (one lane per rule, so a dead receiver delays only its own alerts) and return at once;
 * each lane's loop sends one alert at a time with the rule's timeout and attempts.
 */
export class AlertSender {
  private readonly lanes: Outgoing[][];
  private readonly draining = new Set<number>();
  private readonly stopper = new AbortController();
  private readonly loops = new Set<Promise<void>>();

  constructor(
    private readonly redis: Redis,
    private readonly rules: readonly AlertRule[],
    private readonly daemonId: string,
    private readonly events: RunletEvents,
    private readonly logger: Logger,
    private readonly opts: SenderOptions = {},
  ) {
    this.lanes = rules.map(() => []);
  }

  push(item: Outgoing): void {
    if (this.stopper.signal.aborted) return;
    const lane = this.lanes[item.rule]!;
    if (lane.length >= (this.opts.queueLimit ?? QUEUE_LIMIT)) {
      const dropped = lane.shift()!;
      const { event, task, run } = dropped.body;
      this.logger.warn(
        { rule: dropped.rule, event, task, runId: run?.id, host: host(this.rules[dropped.rule]!.url) },
        'alert queue full: dropped the oldest alert',
      );
      this.events.emit('alert:failed', { rule: dropped.rule, event, task, runId: run?.id, attempts: 0, error: 'dropped: queue full' });
      dropped.done?.();
    }
    lane.push(item);
    if (!this.draining.has(item.rule)) {
      this.draining.add(item.rule);
      const loop = this.drain(item.rule).finally(() => {
        this.draining.delete(item.rule);
        this.loops.delete(loop);
      });
      this.loops.add(loop);
    }
  }

  private async drain(rule: number): Promise<void> {
    const lane = this.lanes[rule]!;
    while (lane.length > 0 && !this.stopper.signal.aborted) {
      const item = lane.shift()!;
      try {
        await this.deliver(item);
      } catch (err) {
        // Only Redis can throw here (the marker); the alert stays unacknowledged and comes back.
        if (!this.stopper.signal.aborted) this.logger.error({ err, rule }, 'alert could not be sent (Redis)');
      }
    }
  }

  /**
   * At most one daemon sends an alert: the marker is taken with SET NX before the first POST
   * ("sending", expiring after the rule's delivery budget) and becomes "sent" after a 2xx.
   * A second daemon (a redelivered stream entry, a second stuck scan) finds it and skips.
   * If this daemon dies mid-POST, the "sending" marker expires and the alert is sent again
   * by whoever handles it next (the stream entry was not acknowledged; the stuck item is
   * found again): at-least-once at that point, so a receiver may see it twice.
   */
  private async claim(item: Outgoing, budgetMs: number): Promise<boolean> {
    return (await this.redis.set(item.marker, `sending:${this.daemonId}`, 'PX', budgetMs, 'NX')) === 'OK';
  }

  private async deliver(item: Outgoing): Promise<void> {
    const rule = this.rules[item.rule]!;
    const { event, task, run } = item.body;
    const log = { rule: item.rule, event, task, runId: run?.id, host: host(rule.url) };
    if (!(await this.claim(item, deliveryBudgetMs(rule, this.opts.backoffMs, this.opts.backoffMaxMs)))) {
      item.done?.();
      return;
    }
    let error = '';
    for (let attempt = 1; attempt <= rule.retries; attempt++) {
      error = await this.post(rule, item.body);
      if (this.stopper.signal.aborted) return; // not done: the marker expires and the alert comes back
      if (error === '') {
        await this.redis.set(item.marker, 'sent', 'PX', item.markerTtlMs);
        this.logger.info({ ...log, attempts: attempt }, 'alert sent');
        this.events.emit('alert:sent', { rule: item.rule, event, task, runId: run?.id, attempts: attempt });
        item.done?.();
        return;
      }
      if (attempt < rule.retries) {
        const waitMs = Math.min((this.opts.backoffMs ?? BACKOFF_MS) * 2 ** (attempt - 1), this.opts.backoffMaxMs ?? BACKOFF_MAX_MS);
        this.logger.warn({ ...log, attempt, of: rule.retries, error, retryInMs: waitMs }, 'alert delivery failed; retrying');
        await this.sleep(waitMs);
        if (this.stopper.signal.aborted) return;
      }
    }
    // Given up for good: marked, so neither a redelivery nor the next stuck scan tries again.
    await this.redis.set(item.marker, 'failed', 'PX', item.markerTtlMs);
    this.logger.error({ ...log, attempts: rule.retries, error }, 'alert given up: every attempt failed');
    this.events.emit('alert:failed', { rule: item.rule, event, task, runId: run?.id, attempts: rule.retries, error });
    item.done?.();
  }

  /** '' on a 2xx answer, else what went wrong. */
  private async post(rule: AlertRule, body: AlertBody): Promise<string> {
    try {
      const res = await fetch(rule.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.any([AbortSignal.timeout(rule.timeoutMs), this.stopper.signal]),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? '' : `HTTP ${res.status}`;
    } catch (err) {
      const e = err as Error;
      if (e.name === 'TimeoutError') return `no answer within ${rule.timeoutMs} ms`;
      return e.message + ((e.cause as Error | undefined)?.message ? ` (${(e.cause as Error).message})` : '');
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.stopper.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Alerts being sent or queued: what stop() leaves behind. */
  pending(): number {
    return this.lanes.reduce((n, l) => n + l.length, 0) + this.draining.size;
  }

  /**
   * Aborts what is in flight and drops the queue without waiting for receivers. Nothing is
   * lost for good: unsent run alerts stay unacknowledged in the stream for another daemon,
   * and stuck items are found again by the next scan.
   */
  async stop(): Promise<void> {
    const left = this.pending();
    this.stopper.abort();
    for (const lane of this.lanes) lane.length = 0;
    await Promise.allSettled([...this.loops]);
    if (left > 0) this.logger.info({ left }, 'alerts not sent at shutdown are left to another daemon or the next start');
  }
}
