import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RunletConfig, TaskConfig } from '../config/types.js';
import type { WaitListener } from '../dispatch/workers.js';
import { slotHolders } from '../dispatch/gate.js';
import { liveDaemons, type Identity } from '../dispatch/identity.js';
import { formatDuration } from '../lib/format.js';
import { waitingKeys } from '../runs/keys.js';
import type { RunReader, RunStore } from '../runs/store.js';
import { currentAttempt, type RunRecord } from '../runs/types.js';

/**
 * Why a queued run waits, for people ("Now" on the dashboard, /api/status, stuck runs).
 *
 * Admission gates fetching (dispatch/workers.ts): a node that has no room for a pool's runs
 * pauses that pool's worker, so the run is never handed to it and could not carry the
 * reason itself. So each node records, per pool, why it does not fetch (a hash per pool, one
 * field per daemon, written when the reason changes); a run fetched and handed back (too big
 * for the room left, or two workers raced for the last room) gets the reason on its own
 * record. At read time the reasons of live daemons are combined with what the record says
 * (retry, jitter) and the task's cluster-wide slots (dispatch/gate.ts).
 */

/** A run's own recorded refusal counts this long; after that the per-task reasons speak. */
const RUN_REASON_FRESH_MS = 60_000;

export interface Block {
  readonly daemon: string;
  readonly node: string;
  readonly reason: string;
  readonly at: number;
}

export type WaitCode = 'retry_backoff' | 'jitter' | 'task_concurrency' | 'admission' | 'free_worker';

export interface WaitReason {
  readonly code: WaitCode;
  /** One line for people: "memory budget: node node-a has 0 B of its 512 MiB memory budget free; ...". */
  readonly text: string;
  /** For retry and jitter: when the wait ends (epoch ms) at the latest. */
  readonly until?: number;
}

/** What whyWaiting needs besides the run, read once for a whole listing. */
export interface WaitFacts {
  readonly now: number;
  readonly tasks: Readonly<Record<string, TaskConfig>>;
  /** Runs in progress per task (holding one of its slots), cluster-wide. */
  readonly active: ReadonlyMap<string, number>;
  /** The queued runs among them hold their slot already: the task's limit is not why they wait. */
  readonly holding?: ReadonlySet<string>;
  /** Per pool: the live daemons that do not fetch its runs, and why. */
  readonly blocks: ReadonlyMap<string, readonly Block[]>;
  /** Live daemons in the cluster: a task waits for room only if every one of them refuses it. */
  readonly liveDaemons: number;
}

/** When the run last became queued (created, or sent back for a retry). */
export function queuedSince(run: RunRecord): number {
  for (let i = run.transitions.length - 1; i >= 0; i--) if (run.transitions[i]!.status === 'queued') return run.transitions[i]!.at;
  return run.createdAt;
}

/**
 * When a queued run was due to start: after its retry wait, or after its tick plus the
 * jitter (the exact random delay is the queue job's, not on the record: the bound is used).
 */
export function dueAt(run: RunRecord, task: TaskConfig | undefined): number {
  let due = queuedSince(run);
  if (run.retryAt !== undefined) due = Math.max(due, run.retryAt);
  else if (jittered(run, task)) due += task!.jitterMs;
  return due;
}

function jittered(run: RunRecord, task: TaskConfig | undefined): boolean {
  return run.trigger === 'cron' && !run.backfill && (task?.jitterMs ?? 0) > 0 && currentAttempt(run) === 1;
}

/** admission.ts says "this node"; a reader of the cluster wants the node's name. */
function onNode(block: { node: string; reason: string }): string {
  const named = block.reason.replace(/ on this node/g, ` on ${block.node}`).replace(/^the node has /, `node ${block.node} has `);
  const text = named === block.reason ? `${block.node}: ${block.reason}` : named;
  return /memory budget/.test(text) ? `memory budget: ${text}` : text;
}

export function whyWaiting(run: RunRecord, facts: WaitFacts): WaitReason {
  const { now } = facts;
  const task = facts.tasks[run.task];
  if (run.retryAt !== undefined && run.retryAt > now) {
    const of = run.maxAttempts !== undefined ? ` of ${run.maxAttempts}` : '';
    return {
      code: 'retry_backoff',
      text: `retry backoff: attempt ${run.attempt ?? '?'}${of} is due in ${formatDuration(run.retryAt - now)}`,
      until: run.retryAt,
    };
  }
  if (jittered(run, task) && queuedSince(run) + task!.jitterMs > now) {
    const until = queuedSince(run) + task!.jitterMs;
    return {
      code: 'jitter',
      text: `jitter delay: starts up to ${formatDuration(task!.jitterMs)} after its tick (at the latest in ${formatDuration(until - now)})`,
      until,
    };
  }
  const active = facts.active.get(run.task) ?? 0;
  if (task && task.overlap !== 'allow' && active >= task.concurrency && !facts.holding?.has(run.id)) {
    return { code: 'task_concurrency', text: `task concurrency: ${active} of ${task.concurrency} in progress cluster-wide` };
  }
  const blocks = task ? (facts.blocks.get(task.pool) ?? []) : [];
  if (blocks.length > 0 && blocks.length >= facts.liveDaemons) return { code: 'admission', text: blocks.map(onNode).join('; ') };
  if (run.waitReason && run.waitReasonAt !== undefined && now - run.waitReasonAt < RUN_REASON_FRESH_MS) {
    return { code: 'admission', text: onNode({ node: run.waitReasonNode ?? 'a node', reason: run.waitReason }) };
  }
  const some = blocks.length > 0 ? ` (${blocks.map(onNode).join('; ')})` : '';
  return { code: 'free_worker', text: `waiting for a free worker${some}` };
}

/**
 * Reads the facts for `config`'s tasks: runs in progress, live daemons, and their refusals.
 * Its cost follows the pools and the tasks with runs in progress, not the tasks declared.
 */
export async function loadWaitFacts(
  redis: Redis,
  config: RunletConfig,
  now = Date.now(),
  // A caller that already read this (GET /api/status) passes it.
  loaded: { live?: Awaited<ReturnType<typeof liveDaemons>> } = {},
): Promise<WaitFacts> {
  const [holders, live] = await Promise.all([slotHolders(redis), loaded.live ?? liveDaemons(redis)]);
  const active = new Map([...holders].map(([task, ids]) => [task, ids.length]));
  const holding = new Set([...holders.values()].flat());
  const liveIds = new Set(live.map((d) => String(d.id)));
  const names = Object.keys(config.pools);
  const pipe = redis.pipeline();
  for (const name of names) pipe.hgetall(waitingKeys.blocked(name));
  const res = (await pipe.exec()) ?? [];
  const blocks = new Map<string, Block[]>();
  names.forEach((name, i) => {
    const hash = (res[i]?.[1] ?? {}) as Record<string, string>;
    // A daemon that died while a task was blocked leaves its field; only the living count.
    const list = Object.entries(hash)
      .filter(([daemon]) => liveIds.has(daemon))
      .map(([, json]) => JSON.parse(json) as Block);
    if (list.length > 0) blocks.set(name, list);
  });
  return { now, tasks: config.tasks, active, holding, blocks, liveDaemons: liveIds.size };
}

/**
 * Writes what this node's workers report (dispatch/workers.ts WaitListener) to Redis.
 * Fire and forget: a failed write only makes an explanation less precise, and must never
 * slow the worker that reported it.
 */
export class WaitRecorder implements WaitListener {
  private readonly pools = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly store: RunStore,
    private readonly identity: Identity,
    private readonly logger: Logger,
  ) {}

  poolBlocked(pool: string, reason: string | undefined): void {
    const key = waitingKeys.blocked(pool);
    const write =
      reason === undefined
        ? this.redis.hdel(key, this.identity.daemonId)
        : this.redis.hset(
            key,
            this.identity.daemonId,
            JSON.stringify({ daemon: this.identity.daemonId, node: this.identity.node, reason, at: Date.now() } satisfies Block),
          );
    if (reason !== undefined) this.pools.add(pool);
    void write.catch((err: Error) => this.logger.debug({ err, pool }, "could not record why a pool's runs wait"));
  }

  runRefused(runId: string, task: string, reason: string): void {
    void this.store
      .setWaitReason(runId, reason, this.identity.node)
      .catch((err: Error) => this.logger.debug({ err, runId, task }, 'could not record why a run waits'));
  }

  /** On shutdown: this daemon no longer refuses anything. */
  async clear(): Promise<void> {
    await Promise.all([...this.pools].map((p) => this.redis.hdel(waitingKeys.blocked(p), this.identity.daemonId)));
  }
}

/** The queued runs as /api/status lists them: how long each has waited and why. */
export function queuedEntries(runs: readonly RunRecord[], facts: WaitFacts) {
  return runs.map((r) => {
    const since = queuedSince(r);
    const wait = whyWaiting(r, facts);
    return {
      id: r.id,
      task: r.task,
      createdAt: r.createdAt,
      queuedSince: since,
      waitingMs: Math.max(0, facts.now - since),
      waitReason: wait.text,
      waitCode: wait.code,
      waitUntil: wait.until ?? null,
    };
  });
}
