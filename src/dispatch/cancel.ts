import type { Redis } from 'ioredis';
import type { RunStore } from '../runs/store.js';
import { isTerminal, MOVES } from '../runs/types.js';

/** Daemons listen here; the one running the run's container stops it. */
export const CANCEL_CHANNEL = 'runlet:cancel';

export interface CancelOutcome {
  status: string;
  accepted: boolean;
}

/**
 * Cancels a run wherever it is. A queued run is cancelled by a compare-and-set on its
 * record, so the worker that later takes its job finds it no longer `queued` and never
 * starts it. A run past `queued` is announced on a channel every daemon hears: the one
 * that owns the container stops it (SIGTERM, grace, SIGKILL) and records `cancelled`.
 */
export async function cancelRun(redis: Redis, store: RunStore, runId: string, reason = 'cancelled on request'): Promise<CancelOutcome> {
  if (await store.transition(runId, MOVES.cancelQueued.to, { from: MOVES.cancelQueued.from, reason: `${reason}, before it started`, fields: { finishedAt: Date.now() } })) {
    return { status: 'cancelled', accepted: true };
  }
  const run = await store.get(runId);
  if (!run || isTerminal(run.status)) return { status: run?.status ?? 'unknown', accepted: false };
  await redis.publish(CANCEL_CHANNEL, JSON.stringify({ runId, reason }));
  return { status: 'cancelling', accepted: true };
}

/** The channel's message: a JSON `{ runId, reason }` (a bare run id is read as well). */
export function parseCancelMessage(message: string): { runId: string; reason?: string } {
  try {
    const m = JSON.parse(message) as { runId?: string; reason?: string };
    if (typeof m.runId === 'string') return { runId: m.runId, reason: m.reason };
  } catch {
    // a bare run id
  }
  return { runId: message };
}
