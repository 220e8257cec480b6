import type { Redis } from 'ioredis';
import { CANCEL_CHANNEL } from '../runs/keys.js';
import type { RunStore } from '../runs/store.js';
import { isTerminal, MOVES } from '../runs/types.js';

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
  if (
    await store.transition(runId, MOVES.cancelQueued.to, {
      from: MOVES.cancelQueued.from,
      reason: `${reason}, before it started`,
      fields: { finishedAt: Date.now() },
    })
  ) {
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

/**
 * Hands every cancel request on the channel to `onCancel`; the daemon that runs the run's
 * container stops it, the others find nothing to stop. Subscribed once ready, and again on
 * every ready: a SUBSCRIBE sent while a fresh connection is still connecting was seen lost
 * (see http/live.ts); twice is harmless. Returns the release.
 */
export async function subscribeToCancels(redis: Redis, onCancel: (runId: string, reason?: string) => void): Promise<() => Promise<void>> {
  const subscriber = redis.duplicate();
  subscriber.on('error', () => undefined);
  subscriber.on('ready', () => void subscriber.subscribe(CANCEL_CHANNEL).catch(() => undefined));
  if (subscriber.status !== 'ready') await new Promise((resolve) => subscriber.once('ready', resolve));
  await subscriber.subscribe(CANCEL_CHANNEL);
  subscriber.on('message', (_channel, message: string) => {
    const { runId, reason } = parseCancelMessage(message);
    onCancel(runId, reason);
  });
  return async () => void subscriber.disconnect();
}
