import type { Logger } from 'pino';
import type { RunletConfig } from '../config/types.js';
import type { OwnedContainer, PreparedRun, Runtime } from '../runtime/types.js';
import { nodeLabels, parseRunLabels } from '../runtime/labels.js';
import type { RunStore } from '../runs/store.js';
import { TRIGGER_KINDS, type RunRecord, type TriggerKind } from '../runs/types.js';
import type { TaskGate } from './gate.js';
import type { Identity } from './identity.js';

/**
 * Runs whose record Redis lost while their container ran: Redis was emptied (a flush, a
 * restart without its append-only file, a failover to an empty replica), or failed over
 * before the record reached the replica. The container still runs and ends; without a
 * record, its end would be refused like any late writer's and the outcome dropped in
 * silence. So the daemon running it records the run again from the container's labels
 * (run id, task, trigger, attempt, node, daemon), then its end is recorded as any
 * attempt's: status, exit code, output, log tail, usage and the ended-runs entry (chaining,
 * alerts and waiters see it). What only the lost record held — the payload, the dedupe key,
 * when the run was asked for — is gone, so such a run is never retried: its attempt is its
 * last. Each run recorded this way is logged as an error, once.
 */

/** What of a RunContext (run-job.ts) recording a run again needs. */
export interface OrphanContext {
  readonly config: RunletConfig;
  readonly store: RunStore;
  readonly runtime: Runtime;
  readonly identity: Identity;
  readonly logger: Logger;
  /** Runs this process is executing or has adopted, with the claim it holds on each. */
  readonly active: ReadonlyMap<string, { readonly claim: string }>;
  /** The run recorded again takes its task slot back (and so is seen by the scans of runs in progress). */
  readonly gate?: Pick<TaskGate, 'hold'>;
}

/** The reason on a run recorded again; also what its transition says. */
export const RECORDED_AGAIN =
  "recorded again from its container's labels: redis lost the run's record while the container ran (emptied, or failed over before the record reached the replica); not retried, as the request (payload, dedupe key) went with the record";

/**
 * Right before an attempt's end is recorded: when the run has no record, records it again
 * from the labels of its container (`prepared`: this daemon's own, or adopted).
 */
export async function recordAgainIfLost(
  ctx: OrphanContext,
  prepared: PreparedRun,
  held: { attempt: number; claim: string },
  startedAt?: number,
): Promise<void> {
  if (await ctx.store.exists(prepared.runId)) return;
  await recordAgain(ctx, {
    runId: prepared.runId,
    task: prepared.spec.task,
    containerId: prepared.containerId,
    labels: prepared.spec.labels ?? {},
    attempt: held.attempt,
    // The holder's claim, so its end (fenced by the claim) is recorded.
    claim: held.claim,
    startedAt,
  });
}

/**
 * Start-up settling found a container of this node with no record: records the run again
 * so it is adopted like any other. Undefined when its task is no longer configured or it
 * never started (settling removes those).
 */
export async function recordAgainFromContainer(ctx: OrphanContext, c: OwnedContainer): Promise<RunRecord | undefined> {
  if (c.startedAt === undefined || !ctx.config.tasks[c.task]) return undefined;
  const { attempt } = parseRunLabels(c.labels);
  await recordAgain(ctx, { runId: c.runId, task: c.task, containerId: c.containerId, labels: c.labels, attempt, startedAt: c.startedAt });
  return ctx.store.get(c.runId);
}

/**
 * When Redis was found emptied: records again each run this daemon is running now whose
 * record is gone, from its container's labels, so the run shows as running until it ends
 * rather than vanishing. (Its end would record it anyway; this makes it visible now.)
 */
export async function recordRunsInProgress(ctx: OrphanContext): Promise<number> {
  if (ctx.active.size === 0) return 0;
  const { clusterId, node } = ctx.identity;
  let recorded = 0;
  for (const c of await ctx.runtime.list(nodeLabels(clusterId, node))) {
    if (!ctx.active.has(c.runId) || !c.running || (await ctx.store.exists(c.runId))) continue;
    const { attempt } = parseRunLabels(c.labels);
    if (
      await recordAgain(ctx, {
        runId: c.runId,
        task: c.task,
        containerId: c.containerId,
        labels: c.labels,
        attempt,
        claim: ctx.active.get(c.runId)?.claim,
        startedAt: c.startedAt,
      })
    )
      recorded++;
  }
  return recorded;
}

async function recordAgain(
  ctx: OrphanContext,
  c: {
    runId: string;
    task: string;
    containerId: string;
    labels: Readonly<Record<string, string>>;
    attempt: number;
    /** The claim of the daemon that runs the container (none when start-up settling records it: it adopts next). */
    claim?: string;
    startedAt?: number;
  },
): Promise<boolean> {
  const labels = parseRunLabels(c.labels);
  const task = ctx.config.tasks[c.task];
  const known = TRIGGER_KINDS.includes(labels.trigger as TriggerKind);
  // A container of an older runlet has no trigger label; `manual` stands in, and `cause` says so.
  const trigger: TriggerKind = known ? (labels.trigger as TriggerKind) : 'manual';
  const now = Date.now();
  const created = await ctx.store.recordAgain(c.runId, {
    task: c.task,
    trigger,
    // Not a claim: the run's real dedupe key went with its record, and none is taken here.
    dedupeKey: `${c.task}:recorded-again:${c.runId}`,
    status: 'running',
    createdAt: c.startedAt ?? now,
    reason: RECORDED_AGAIN,
    cause: known ? 'recorded again from its container' : 'recorded again from its container (trigger unknown)',
    fields: {
      attempt: c.attempt,
      // Its last attempt: another could not be run as this one was (no payload, no request).
      maxAttempts: c.attempt,
      node: labels.node ?? ctx.identity.node,
      daemon: labels.daemon ?? ctx.identity.daemonId,
      containerId: c.containerId,
      startedAt: c.startedAt,
      ...(c.claim !== undefined && { claim: c.claim }),
      ...(task && { image: task.image, memoryBytes: task.memoryBytes }),
    },
    now,
  });
  if (created) await ctx.gate?.hold(c.task, c.runId).catch(() => undefined);
  if (created)
    ctx.logger.error(
      { runId: c.runId, task: c.task, attempt: c.attempt, containerId: c.containerId.slice(0, 12) },
      "redis lost the record of a run whose container was running: recorded it again from the container's labels; its outcome will be recorded when it ends (not retried)",
    );
  return created;
}
