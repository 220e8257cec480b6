import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AlertRule, RunletConfig } from '../config/types.js';
import type { Identity } from '../dispatch/identity.js';
import type { RunletEvents } from '../runs/events.js';
import type { EndedEntry } from '../runs/ended.js';
import { EndedConsumer, type Handled } from '../runs/ended-consumer.js';
import type { RedisEpoch } from '../runs/epoch.js';
import { alertKeys } from '../runs/keys.js';
import type { RunReader } from '../runs/store.js';
import type { StuckItem } from '../ops/stuck.js';
import { eventsFor, mayConcern, runAlert, stuckAlert } from './message.js';
import { AlertSender, deliveryBudgetMs, type SenderOptions } from './sender.js';

/**
 * The consumer group of the ended-runs stream that alerts read with: one per set of rules
 * (`alerts:<hash>`), so the daemons of one group all alert alike on an entry. See the
 * comment where an entry is acknowledged (Alerts.handle).
 */
export function alertsGroup(rules: readonly AlertRule[]): string {
  return `alerts:${createHash('sha256').update(JSON.stringify(rules)).digest('hex').slice(0, 12)}`;
}
const RUN_MARKER_TTL_MS = 7 * 24 * 3600 * 1000;
/** A stuck item alerts once a day at most, however long it stays stuck. */
const STUCK_MARKER_TTL_MS = 24 * 3600 * 1000;
const STUCK_SCAN_MS = 30_000;
const TOUCH_EVERY_MS = 10_000;

/** A rule's identity in marker keys: its settings, so an edited rule is a new one. */
function ruleId(rule: AlertRule, index: number): string {
  return createHash('sha256')
    .update(JSON.stringify([index, rule.url, rule.on, rule.tasks ?? null]))
    .digest('hex')
    .slice(0, 12);
}

export interface AlertsDeps {
  /** Fixed for this instance's life (its rules are its consumer group): a reload that changes the rules makes another. */
  readonly config: RunletConfig;
  readonly redis: Redis;
  readonly store: RunReader;
  readonly identity: Identity;
  readonly events: RunletEvents;
  readonly logger: Logger;
  /** Puts the alerts consumer group back when Redis comes back empty. */
  readonly epoch?: RedisEpoch;
  /** Where a consumer group this daemon creates starts reading (see TriggerDeps.endedFrom); default '$'. */
  readonly endedFrom?: string;
  /** What is stuck now (ops/stuck.ts StuckFinder). */
  findStuck(): Promise<StuckItem[]>;
}

export interface AlertsOptions extends SenderOptions {
  /** How often one daemon of the cluster looks for stuck items (default 30 s). */
  readonly stuckScanMs?: number;
}

/**
 * Alerts on ended runs (from the ended-runs stream, consumer group `alerts:<rules hash>`) and on stuck
 * items (a scan every 30 s by one daemon of the cluster at a time). Each (rule, run) and
 * (rule, stuck item) alerts once: see AlertSender.claim for the marker that makes sure.
 *
 * A stream entry is acknowledged only once every alert it gave is out of this daemon's
 * hands (sent, given up, dropped, or found sent by another), so a daemon that dies with
 * alerts queued leaves them to another. While alerts wait here behind a slow receiver,
 * their entries are touched every 10 s so no live daemon's backlog is taken over; a dead
 * daemon's is claimed once it has been idle longer than any delivery can take.
 */
export class Alerts {
  /** The consumer group these rules read in (alertsGroup). */
  readonly group: string;
  private readonly sender: AlertSender;
  private readonly consumer: EndedConsumer;
  private readonly ruleIds: string[];
  /** Stream entries with alerts still in this daemon's hands, and how many each. */
  private readonly held = new Map<string, number>();
  private timers: NodeJS.Timeout[] = [];
  private scanning?: Promise<void>;

  constructor(
    private readonly deps: AlertsDeps,
    private readonly opts: AlertsOptions = {},
  ) {
    const rules = deps.config.alerts;
    this.ruleIds = rules.map(ruleId);
    this.sender = new AlertSender(deps.redis, rules, deps.identity.daemonId, deps.events, deps.logger.child({ component: 'alerts' }), opts);
    this.group = alertsGroup(rules);
    const budget = Math.max(0, ...rules.map((r) => deliveryBudgetMs(r, opts.backoffMs, opts.backoffMaxMs)));
    this.consumer = new EndedConsumer({
      redis: deps.redis,
      group: this.group,
      consumer: deps.identity.daemonId,
      logger: deps.logger,
      epoch: deps.epoch,
      // Longer than a delivery can take plus a missed touch, so the "sending" marker of a
      // daemon that died mid-POST has expired when its entry is claimed (AlertSender.claim).
      claimIdleMs: budget + 2 * TOUCH_EVERY_MS,
      purpose: 'alerts',
      handle: (entry) => this.handle(entry),
    });
  }

  async start(from = this.deps.endedFrom ?? '$'): Promise<void> {
    await this.consumer.start(from);
    const touch = setInterval(() => void this.consumer.touch([...this.held.keys()]).catch(() => undefined), TOUCH_EVERY_MS);
    this.timers.push(touch);
    if (this.deps.config.alerts.some((r) => r.on.includes('stuck'))) {
      const every = this.opts.stuckScanMs ?? STUCK_SCAN_MS;
      this.timers.push(setInterval(() => this.scanSoon(every), every));
    }
    for (const t of this.timers) t.unref();
  }

  private async handle(entry: EndedEntry): Promise<Handled> {
    const rules = this.deps.config.alerts;
    if (!rules.some((r) => mayConcern(r, entry.task, entry.status))) return 'ack';
    const run = await this.deps.store.get(entry.run);
    if (!run) {
      this.deps.logger.warn({ runId: entry.run, task: entry.task }, 'an ended run was deleted before its alert could be sent');
      return 'ack';
    }
    const done = () => {
      const left = (this.held.get(entry.id) ?? 1) - 1;
      if (left > 0) this.held.set(entry.id, left);
      else {
        this.held.delete(entry.id);
        void this.consumer
          .ack(entry.id)
          .catch((err: Error) => this.deps.logger.warn({ err }, 'could not acknowledge an alerted run (it may alert again)'));
      }
    };
    const outgoing = rules.flatMap((rule, i) => {
      const match = eventsFor(rule, run);
      return match
        ? [
            {
              rule: i,
              body: runAlert(run, match.event, match.events),
              marker: alertKeys.marker(this.ruleIds[i]!, `run:${run.id}`),
              markerTtlMs: RUN_MARKER_TTL_MS,
              done,
            },
          ]
        : [];
    });
    // Acknowledged (now, or in `done` once sent) only by a daemon whose rules are this
    // group's: the group is named for the rules (alertsGroup), so during a rolling config
    // change a daemon without a new rule never acknowledges an entry that rule would alert
    // on; it reads in its own group. A rule both configs have alerts once: the sent marker
    // is the rule's (ruleId), whichever group's daemon claims it first.
    if (outgoing.length === 0) return 'ack';
    this.held.set(entry.id, outgoing.length);
    for (const o of outgoing) this.sender.push(o);
    return 'defer';
  }

  private scanSoon(everyMs: number): void {
    this.scanning ??= this.scan(everyMs)
      .catch((err: Error) => this.deps.logger.warn({ err }, 'looking for stuck runs failed'))
      .finally(() => (this.scanning = undefined));
  }

  /** One daemon per period (a lock with a TTL shorter than the period) finds and alerts. */
  async scan(everyMs = this.opts.stuckScanMs ?? STUCK_SCAN_MS): Promise<void> {
    const lock = await this.deps.redis.set(
      alertKeys.stuckScan(),
      this.deps.identity.daemonId,
      'PX',
      Math.max(500, Math.floor(everyMs * 0.8)),
      'NX',
    );
    if (lock !== 'OK') return;
    const items = await this.deps.findStuck();
    const rules = this.deps.config.alerts;
    for (const item of items) {
      const targets = rules
        .map((r, i) => ({ r, i }))
        .filter(({ r }) => r.on.includes('stuck') && (!r.tasks || r.tasks.includes(item.task)));
      if (targets.length === 0) continue;
      const run = item.runId ? await this.deps.store.get(item.runId) : undefined;
      for (const { i } of targets) {
        this.sender.push({
          rule: i,
          body: stuckAlert(item, run),
          marker: alertKeys.marker(this.ruleIds[i]!, `stuck:${item.id}`),
          markerTtlMs: STUCK_MARKER_TTL_MS,
        });
      }
    }
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.consumer.stop();
    await this.scanning;
    await this.sender.stop();
  }

  /**
   * Stops, and says where the group of the rules that replace these starts: before the
   * first entry whose alerts this daemon had not sent yet, so they are sent under the new
   * rules (once: an unchanged rule keeps its sent marker).
   */
  async handOver(): Promise<string> {
    await this.stop();
    return this.consumer.handOverPoint();
  }
}
