import type { RunSpec, WarmSpec } from '../../src/runtime/types.js';

/** The part of a RunSpec a warm instance is made from (the rest comes with deliver()). */
export function warmSpecOf(spec: RunSpec): WarmSpec {
  const { runId: _runId, attempt: _attempt, payload: _payload, env: _env, timeoutMs: _timeoutMs, ...warm } = spec;
  return warm;
}
