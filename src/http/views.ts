import { outputValue, type RunRecord } from '../runs/types.js';

/** The short form of a run used in listings (no payload, no logs). */
export function runSummary(r: RunRecord) {
  const durationMs = r.startedAt !== undefined && r.finishedAt !== undefined ? r.finishedAt - r.startedAt : undefined;
  return {
    id: r.id,
    task: r.task,
    trigger: r.trigger,
    status: r.status,
    exitCode: r.exitCode ?? null,
    reason: r.reason ?? null,
    createdAt: iso(r.createdAt),
    scheduledAt: iso(r.scheduledAt),
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    durationMs: durationMs ?? null,
    node: r.node ?? null,
    usage: r.usage ?? null,
    attempt: r.attempt ?? null,
    maxAttempts: r.maxAttempts ?? null,
    dead: r.dead ?? false,
    retryOf: r.retryOf ?? null,
    requestedBy: r.requestedBy ?? null,
    cancelledBy: r.cancelledBy ?? null,
  };
}

/**
 * The full record: everything in the summary plus transitions, attempts, payload and log tail.
 * `withContent` false (a viewer's token, http/roles.ts): no payload, headers, output nor log
 * tail, only whether there is one.
 */
export function runDetail(r: RunRecord, withContent = true) {
  const detail = runDetailAll(r);
  if (withContent) return detail;
  return { ...detail, payload: null, logTail: '', output: null, outputError: null, hidden: ['payload', 'logTail', 'output'] };
}

function runDetailAll(r: RunRecord) {
  return {
    ...runSummary(r),
    dedupeKey: r.dedupeKey,
    image: r.image ?? null,
    containerId: r.containerId ?? null,
    memoryBytes: r.memoryBytes ?? null,
    payload: r.payload ?? null,
    transitions: r.transitions.map((t) => ({
      status: t.status,
      at: new Date(t.at).toISOString(),
      ...(t.reason ? { reason: t.reason } : {}),
    })),
    retryAt: iso(r.retryAt),
    attempts: r.attempts.map((a) => ({
      attempt: a.attempt,
      status: a.status,
      exitCode: a.exitCode ?? null,
      reason: a.reason ?? null,
      startedAt: iso(a.startedAt),
      finishedAt: iso(a.finishedAt),
      containerId: a.containerId ?? null,
    })),
    logTail: r.logTail ?? '',
    output: r.output === undefined ? null : outputValue(r.output),
    outputError: r.outputError ?? null,
  };
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}
