import type { StopSignal } from './stop.js';
import { formatBytes, formatDuration } from '../lib/format.js';
import { exitReason } from './reasons.js';
import type { KillReason, RunResult, RunSpec } from './types.js';

/** What is known about a container once it has ended. */
export interface EndFacts {
  readonly exitCode?: number;
  readonly oomKilled: boolean;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  /** The engine's own error for the container (State.Error), if any. */
  readonly engineError?: string;
  /** Set when we stopped it ourselves (see Stopper). */
  readonly stopped?: { reason: KillReason; detail?: string; signal: StopSignal };
}

/**
 * Turns how a container ended into a run outcome. The order matters: our own stop comes
 * first (its reason was recorded before the signal), then the memory limit (the kernel's
 * OOM kill shows up as exit 137, which must not read as an ordinary failure), then the exit
 * code.
 */
export function outcomeOf(facts: EndFacts, spec: RunSpec, logTail: string): RunResult {
  // The engine stamps StartedAt after runc returns but FinishedAt with the kernel's exit
  // time, so a program that ends in a few ms can "finish" before it "started": clamp, or
  // the run's duration (and its usage) would be negative.
  const finishedAt =
    facts.finishedAt !== undefined && facts.startedAt !== undefined ? Math.max(facts.finishedAt, facts.startedAt) : facts.finishedAt;
  const base = { exitCode: facts.exitCode, startedAt: facts.startedAt, finishedAt, logTail };
  if (facts.stopped) {
    const { reason, detail, signal } = facts.stopped;
    const how = signal === 'SIGKILL' ? `killed with SIGKILL after ${formatDuration(spec.killGraceMs)} grace` : 'stopped with SIGTERM';
    if (reason === 'timeout')
      return { ...base, outcome: 'timed_out', reason: `exceeded timeout of ${formatDuration(spec.timeoutMs)}; ${how}` };
    return { ...base, outcome: 'cancelled', reason: `cancelled${detail ? ` (${detail})` : ''}; ${how}` };
  }
  if (facts.oomKilled) return { ...base, outcome: 'oom_killed', reason: `exceeded memory limit of ${formatBytes(spec.memoryBytes)}` };
  if (facts.exitCode === 0) return { ...base, outcome: 'succeeded' };
  if (facts.exitCode === undefined)
    return { ...base, outcome: 'failed', reason: facts.engineError || 'the container ended without an exit code' };
  const reason = exitReason(facts.exitCode, logTail);
  return { ...base, outcome: 'failed', reason: facts.engineError ? `${reason}: ${facts.engineError}` : reason };
}

/** Engine timestamps are RFC 3339 with nanoseconds; "0001-01-01T00:00:00Z" means "never". */
export function engineTime(value: string | undefined): number | undefined {
  if (!value || value.startsWith('0001-')) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
