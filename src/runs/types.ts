/**
 * A run's single status value. Transitions only move forward:
 *   queued → starting → running → succeeded | failed | timed_out | oom_killed | cancelled | lost
 * and `skipped` straight from `queued` (or instead of it). Terminal statuses never change,
 * except `lost`, which may still get its attempt's real outcome or be retried. Never
 * `lost → lost`: an attempt is declared lost once.
 * A retried attempt goes back: starting | running | lost → queued (the next attempt's wait).
 * MOVES below is the same as a table, the one callers use.
 */
export type RunStatus =
  'queued' | 'starting' | 'running' | 'succeeded' | 'failed' | 'timed_out' | 'oom_killed' | 'cancelled' | 'skipped' | 'lost';

export const TERMINAL_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'timed_out', 'oom_killed', 'cancelled', 'skipped', 'lost'];

export function isTerminal(status: RunStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/**
 * Where an attempt ends from. Never `queued`: a run queued again is waiting for its *next*
 * attempt, which a late ender of the previous one must not end. `lost` (terminal, but see
 * the transition script) may still get the attempt's real outcome, or be retried.
 */
const ATTEMPT_IN_PROGRESS = ['starting', 'running', 'lost'] as const;

/** The statuses an attempt ends in: the runtime's outcomes, and `lost` when its container is out of reach. */
export const ATTEMPT_END_STATUSES = ['succeeded', 'failed', 'timed_out', 'oom_killed', 'cancelled', 'lost'] as const;
export type AttemptEndStatus = (typeof ATTEMPT_END_STATUSES)[number];

/** One kind of status change: the statuses it may leave, and where it goes. */
export interface StatusMove {
  readonly from: readonly RunStatus[];
  readonly to: RunStatus | readonly RunStatus[];
}

/**
 * Every status change a run makes after it is created (`queued`, or `skipped` instead: no
 * move leads to `skipped`). Callers hand `from` to the store's compare-and-set, so the status
 * guard in Redis enforces exactly this table; test/run-status.test.ts checks it against the
 * rules above.
 */
export const MOVES = {
  /** The claim: only the worker that moves the run out of `queued` creates a container. */
  start: { from: ['queued'], to: 'starting' },
  /** Its container started. */
  run: { from: ['starting'], to: 'running' },
  /** Cancelled before it started; past `queued`, stopping its container ends the attempt `cancelled`. */
  cancelQueued: { from: ['queued'], to: 'cancelled' },
  /**
   * Its attempt declared lost (out of reach, or its task no longer configured), retried or
   * the run's outcome: only from an attempt still in progress, never from `lost`. Those
   * who declare it are several (the redelivered job, the reconciler of every daemon of the
   * node, start-up settling), each judging from its own read of the run, and all name the
   * same claim, the dead holder's, which the declaration leaves in place (so that holder's
   * real outcome may still replace `lost`): the claim fences them from an adopter, not from
   * each other. The status does: whoever comes second finds the attempt lost already and
   * writes nothing, instead of appending the same attempt's end again (and, for a run
   * without retries, ending it twice: two `lost` attempts, two ended-runs entries).
   * A lost attempt found later never to have started is not given back either: its run
   * has been reported ended.
   */
  lose: { from: ['starting', 'running'], to: 'lost' },
  /**
   * An attempt ended with attempts left: the run waits for its next one. From `lost` only
   * with the attempt's real outcome: a lost end takes `lose`'s from (retries.ts).
   */
  retry: { from: ATTEMPT_IN_PROGRESS, to: 'queued' },
  /**
   * An attempt ended with its container's outcome, which is the run's, and replaces `lost`
   * (its node came back). Ending it `lost` is `lose`.
   */
  endAttempt: { from: ATTEMPT_IN_PROGRESS, to: ['succeeded', 'failed', 'timed_out', 'oom_killed', 'cancelled'] },
} as const satisfies Record<string, StatusMove>;

export type TriggerKind = 'cron' | 'manual' | 'webhook' | 'queue' | 'mongo' | 'after' | 'http';

export const TRIGGER_KINDS: readonly TriggerKind[] = ['cron', 'manual', 'webhook', 'queue', 'mongo', 'after', 'http'];

export interface Transition {
  readonly status: RunStatus;
  /** Epoch milliseconds. */
  readonly at: number;
  readonly reason?: string;
}

export interface Usage {
  /** Wall time the container ran, in seconds. */
  readonly containerSeconds: number;
  /** Memory limit in GiB × containerSeconds (as AWS Lambda counts GB-seconds). */
  readonly gbSeconds: number;
}

/** What a trigger hands to dispatch: everything needed to create one run. */
export interface RunRequest {
  readonly task: string;
  readonly trigger: TriggerKind;
  /**
   * Derived from the trigger so that the same outside event never makes two runs:
   * cron `<task>:cron:<tickMs>`, manual `<task>:manual:<runId>` (or `<task>:manual:key:<Idempotency-Key>`),
   * webhook `<task>:hook:<event id>` (triggers/webhook/delivery.ts), queue `<task>:queue:<queue>:<job id>`,
   * mongo `<task>:mongo:<resume token>`, after `<task>:after:<finished run id>`, http `<task>:http:<request id>` (never deduped).
   */
  readonly dedupeKey: string;
  /**
   * How long the dedupe key keeps answering with its run; the store's default (7 days,
   * longer than any redelivery window) when unset. A webhook's `dedupe: body` window sets it.
   */
  readonly dedupeTtlMs?: number;
  /** For cron: the tick this run stands for (epoch ms). */
  readonly scheduledAt?: number;
  readonly payload?: unknown;
  /** A cron tick run again on request (runlet backfill), not by the timer. */
  readonly backfill?: boolean;
  /** For a catch-up run: how many ticks were missed while no daemon ran (this one included). */
  readonly missedTicks?: number;
  /** A person asked to run this ended run again (POST /api/runs/:id/retry): its id. */
  readonly retryOf?: string;
  /**
   * Set when `payload` is a body's text exactly as sent (a webhook): it is then delivered
   * byte for byte (stdin, payload.json, RUNLET_PAYLOAD), not JSON-encoded, and the container
   * gets RUNLET_CONTENT_TYPE.
   */
  readonly contentType?: string;
  /** Request headers the task may read (lowercase names), as RUNLET_HEADERS (JSON). */
  readonly headers?: Readonly<Record<string, string>>;
  /** What caused the run, for people: "delivery 8f2…", "job 17 of queue bids", "run 01J… succeeded". */
  readonly cause?: string;
}

/** One ended attempt of a run; a run with retries has one per container it ran. */
export interface AttemptRecord {
  /** 1-based, as RUNLET_ATTEMPT. */
  readonly attempt: number;
  readonly status: RunStatus;
  readonly exitCode?: number;
  readonly reason?: string;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly containerId?: string;
}

export interface RunRecord {
  readonly id: string;
  readonly task: string;
  readonly trigger: TriggerKind;
  readonly dedupeKey: string;
  readonly status: RunStatus;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly scheduledAt?: number;
  readonly backfill?: boolean;
  readonly missedTicks?: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly node?: string;
  /** The daemon process that started the container (for settling after a crash). */
  readonly daemon?: string;
  /**
   * The token of the claim on the current attempt (its claimant's, or its adopter's): every
   * write for the attempt names it, and is refused once another daemon holds the claim.
   */
  readonly claim?: string;
  /** The queue job the claimant took the run under: a redelivery of that job stands in for the holder. */
  readonly job?: string;
  /**
   * While starting or running: when the current attempt's container is surely gone (epoch ms):
   * its start + timeout + kill grace. Nobody starts another attempt before it, as a holder
   * that is frozen or cut off cannot be told to stop its container.
   */
  readonly deadline?: number;
  readonly containerId?: string;
  readonly image?: string;
  readonly exitCode?: number;
  readonly reason?: string;
  /** Only when read with `withPayload` (a key of its own: listings never load it). */
  readonly payload?: unknown;
  readonly usage?: Usage;
  readonly memoryBytes?: number;
  readonly transitions: readonly Transition[];
  /** The attempt running or next to run (1-based); absent on records older than retries. */
  readonly attempt?: number;
  /** Attempts this run may take in all (the task's retries.attempts when it was created). */
  readonly maxAttempts?: number;
  /** Every attempt that ended, oldest first. */
  readonly attempts: readonly AttemptRecord[];
  /** While queued for a retry: when the retry is due (epoch ms). */
  readonly retryAt?: number;
  /** Ended failed, timed_out, oom_killed or lost with no attempt left: it needs a person. */
  readonly dead?: boolean;
  readonly retryOf?: string;
  /** Who asked for it on the ops API (a token's name), for a manual run or a retry. */
  readonly requestedBy?: string;
  /** Who cancelled it on the ops API. */
  readonly cancelledBy?: string;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: string;
  /**
   * While queued: why a node last refused to take it (pool concurrency, pool or node memory
   * budget), with when and which node; read together with waitReasonAt (stale after a while).
   */
  readonly waitReason?: string;
  readonly waitReasonAt?: number;
  readonly waitReasonNode?: string;
  /** The last 64 KiB of the container's stdout and stderr, interleaved as written. */
  readonly logTail?: string;
  /** The text of /runlet/output.json (at most 1 MiB), when the task wrote one. */
  readonly output?: string;
  /** Why output.json was not stored, or is not valid JSON. */
  readonly outputError?: string;
}

/**
 * The attempt a run is on (running, or next to run), 1-based. A record written before retries
 * existed has no `attempt`: it ran once, so it is on attempt 1 (as the end-attempt script reads it).
 */
export function currentAttempt(run: { readonly attempt?: number }): number {
  return run.attempt ?? 1;
}

/**
 * A run's output as callers receive it (API, queue job value, `after:` payload): the JSON
 * value when output.json parses, else its text (outputError on the record says why).
 */
export function outputValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
