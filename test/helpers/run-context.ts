import type { RunContext } from '../../src/dispatch/context.js';
import { TaskGate } from '../../src/dispatch/gate.js';
import { RunStore } from '../../src/runs/store.js';

/**
 * A daemon's RunContext for tests that drive dispatch functions directly (runJob, markLost,
 * the reconciler) without a daemon: the parts that differ per test given, the rest as a
 * daemon makes them (its store and gate on the same Redis, nothing active, a 30 s lease).
 */
export function runContextOf(
  parts: Pick<RunContext, 'config' | 'runtime' | 'redis' | 'identity' | 'events' | 'logger' | 'queues'>,
): RunContext {
  return {
    ...parts,
    store: new RunStore(parts.redis),
    gate: new TaskGate(parts.redis, parts.config, parts.logger),
    active: new Map(),
    leaseMs: 30_000,
    stopping: new AbortController().signal,
  };
}
