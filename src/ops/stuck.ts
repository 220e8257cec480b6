import type { Redis } from 'ioredis';
import type { RunletConfig } from '../config/types.js';
import { formatDuration } from '../lib/format.js';
import { streamKeys } from '../runs/keys.js';
import { DEFAULT_LEASE_MS } from '../triggers/mongo/lease.js';
import type { RunRecord } from '../runs/types.js';
import { dueAt, whyWaiting, type WaitFacts, type WaitReason } from './waiting.js';

/**
 * What needs a person now: runs the daemon should have ended or started long ago, and
 * change streams that stopped. Read on demand (GET /api/stuck) and by the stuck-alert scan.
 */

export type StuckKind = 'running_past_deadline' | 'queued_too_long' | 'stream_stalled';

export interface StuckItem {
  /** The same stuck thing has the same id on every call and every daemon (alert markers). */
  readonly id: string;
  readonly kind: StuckKind;
  readonly task: string;
  readonly runId?: string;
  /** Since when it is stuck, epoch ms: the missed deadline, the run's due time, the stream's error. */
  readonly since: number;
  readonly detail: string;
  /** queued_too_long: why the run waits. */
  readonly waiting?: WaitReason;
}

/** One change stream's state as its trigger records it (src/triggers/mongo), reduced to what matters here. */
export interface StreamInfo {
  readonly task: string;
  /** unconfigured | waiting | watching | error */
  readonly state: string;
  /** The daemon holding the stream's lease, if any. */
  readonly holder?: string;
  readonly lastEventAt?: number;
  readonly error?: string;
  readonly errorAt?: number;
  /** Since when the stream is in `state` without a holder, when its source knows it. */
  readonly since?: number;
}

/** A kill that has not ended the run this long after SIGKILL was due means the daemon or engine is in trouble. */
export const DEADLINE_SLACK_MS = 30_000;
/** A stream nobody holds: stalled after two lease periods of its trigger, or a minute. */
const STREAM_UNHELD_MS = Math.max(2 * DEFAULT_LEASE_MS, 60_000);

export interface StuckInput {
  readonly config: RunletConfig;
  readonly now: number;
  /** Runs queued, starting or running. */
  readonly runs: readonly RunRecord[];
  readonly facts: WaitFacts;
  readonly streams: readonly StreamInfo[];
  /**
   * First time each stream was seen waiting without a holder, kept by the caller across
   * calls, for sources that do not say since when (updated in place).
   */
  readonly unheldSince?: Map<string, number>;
}

/** Pure: everything stuck in `input`, oldest first. */
export function findStuck(input: StuckInput): StuckItem[] {
  const { config, now } = input;
  const out: StuckItem[] = [];
  for (const run of input.runs) {
    const task = config.tasks[run.task];
    if (run.status === 'starting' || run.status === 'running') {
      if (!task) continue;
      const started = run.startedAt ?? [...run.transitions].reverse().find((t) => t.status === 'starting')?.at ?? run.updatedAt;
      const deadline = started + task.timeoutMs + task.killGraceMs + DEADLINE_SLACK_MS;
      if (now > deadline) {
        out.push({
          id: `running_past_deadline:${run.id}`,
          kind: 'running_past_deadline',
          task: run.task,
          runId: run.id,
          since: deadline,
          detail: `${run.status} for ${formatDuration(now - started)}${run.node ? ` on ${run.node}` : ''}, past its timeout of ${formatDuration(task.timeoutMs)} plus kill grace: the kill did not take (is its daemon or Docker engine in trouble?)`,
        });
      }
    } else if (run.status === 'queued') {
      const waiting = whyWaiting(run, input.facts);
      // A run waiting for its retry or its jitter is on time, however long that is.
      if (waiting.code === 'retry_backoff' || waiting.code === 'jitter') continue;
      const due = dueAt(run, task);
      if (now - due > config.stuck.queuedMs) {
        out.push({
          id: `queued_too_long:${run.id}`,
          kind: 'queued_too_long',
          task: run.task,
          runId: run.id,
          since: due,
          detail: `queued for ${formatDuration(now - due)}: ${waiting.text}`,
          waiting,
        });
      }
    }
  }
  const unheld = input.unheldSince ?? new Map<string, number>();
  const seen = new Set<string>();
  for (const s of input.streams) {
    if (s.state === 'error') {
      // A failure is identified by when it failed, so a later one is news again.
      out.push({
        id: `stream_stalled:${s.task}:error:${s.errorAt ?? ''}`,
        kind: 'stream_stalled',
        task: s.task,
        since: s.errorAt ?? now,
        detail: `change stream failed${s.error ? `: ${s.error}` : ''}`,
      });
    } else if (s.state === 'waiting' && !s.holder) {
      seen.add(s.task);
      const since = s.since ?? unheld.get(s.task) ?? now;
      if (!unheld.has(s.task)) unheld.set(s.task, since);
      if (now - since > STREAM_UNHELD_MS) {
        // By task alone: when it began is only known to the daemon that saw it.
        out.push({
          id: `stream_stalled:${s.task}:unheld`,
          kind: 'stream_stalled',
          task: s.task,
          since,
          detail: `change stream has had no daemon watching it for ${formatDuration(now - since)}`,
        });
      }
    }
  }
  for (const task of [...unheld.keys()]) if (!seen.has(task)) unheld.delete(task);
  return out.sort((a, b) => a.since - b.since);
}

/** Where findStuck's inputs come from in a daemon. */
export interface StuckSources {
  readonly config: RunletConfig;
  inProgress(): Promise<RunRecord[]>;
  facts(now: number): Promise<WaitFacts>;
  streams(): Promise<StreamInfo[]>;
}

/** findStuck over live data, remembering unheld streams between calls. */
export class StuckFinder {
  private readonly unheldSince = new Map<string, number>();

  constructor(private readonly sources: StuckSources) {}

  async find(now = Date.now()): Promise<StuckItem[]> {
    const [runs, facts, streams] = await Promise.all([this.sources.inProgress(), this.sources.facts(now), this.sources.streams()]);
    return findStuck({ config: this.sources.config, now, runs, facts, streams, unheldSince: this.unheldSince });
  }
}

/** No change streams known: the default until a stream source is wired. */
export const noStreams = async (): Promise<StreamInfo[]> => [];

/**
 * The MongoDB triggers' state (src/triggers/mongo/keys.ts: a hash per task) and lease,
 * read directly so this module does not depend on the trigger's classes.
 */
export function mongoStreams(redis: Redis, config: RunletConfig): () => Promise<StreamInfo[]> {
  return async () => {
    // Read at each call: a reload may have added or removed a stream.
    const tasks = Object.values(config.tasks).filter((t) => t.mongo);
    if (tasks.length === 0) return [];
    const pipe = redis.pipeline();
    for (const t of tasks) {
      pipe.hgetall(streamKeys.state(t.name));
      pipe.get(streamKeys.lease(t.name));
    }
    const res = (await pipe.exec()) ?? [];
    return tasks.map((t, i) => {
      const h = (res[i * 2]?.[1] ?? {}) as Record<string, string>;
      const lease = res[i * 2 + 1]?.[1] as string | null;
      const num = (v: string | undefined) => (v ? Number(v) : undefined);
      return {
        task: t.name,
        state: h.state || 'waiting',
        ...(lease && { holder: lease.split('|')[0] }),
        ...(num(h.lastEventAt) !== undefined && { lastEventAt: num(h.lastEventAt) }),
        ...(h.reason && { error: h.reason }),
        ...(num(h.errorAt) !== undefined && { errorAt: num(h.errorAt) }),
      };
    });
  };
}
