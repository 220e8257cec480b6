import type { Enqueued } from '../dispatch/enqueue.js';
import { apiError } from './errors.js';
import type { RunRecord, RunStatus } from '../runs/types.js';

/** What a webhook request is answered with, independent of the HTTP framework. */
export interface Answer {
  readonly status: number;
  readonly contentType: 'application/json; charset=utf-8' | 'text/plain; charset=utf-8';
  /** Sent as is (already JSON for application/json). */
  readonly body: string;
  readonly location?: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

const runPath = (id: string) => `/api/runs/${id}`;
const json = (status: number, value: unknown, id: string): Answer => ({
  status,
  contentType: JSON_TYPE,
  body: JSON.stringify(value),
  location: runPath(id),
});

/**
 * respond: accepted.
 * - a new run: 202 `{ id, status: 'queued' }`;
 * - a redelivery: 200 `{ id, created: false }`, the run the first delivery made;
 * - a run recorded `skipped` (overlap skip, queue full): 200 `{ id, status: 'skipped', reason }`.
 *   200, not 202, because nothing is left to process, and not an error, because the
 *   delivery was received and decided on: a 4xx/5xx would only make the sender retry
 *   into the same skipped record.
 */
export function acceptedAnswer(res: Enqueued): Answer {
  if (!res.created) return json(200, { id: res.runId, created: false }, res.runId);
  if (res.skipped !== undefined) return json(200, { id: res.runId, status: 'skipped', reason: res.skipped }, res.runId);
  return json(202, { id: res.runId, status: 'queued' }, res.runId);
}

/**
 * respond: result, once the wait is over. `run` is undefined when it did not end in time
 * (`current` is then its status as last read).
 * - succeeded: 200 with the text of /runlet/output.json (application/json), or without
 *   one the run's log tail (text/plain);
 * - any other end (failed, timed_out, oom_killed, cancelled, lost, skipped): 502 — the
 *   upstream here is the task, and it did not produce a result;
 * - not ended within resultTimeoutMs: 504 with the run id; the run goes on.
 */
export function resultAnswer(
  runId: string,
  run: RunRecord | undefined,
  waitedMs: number,
  current: RunStatus | 'unknown' = 'unknown',
): Answer {
  if (!run) {
    const e = apiError('RESULT_TIMEOUT', { id: runId, waitedMs, status: current });
    return json(e.statusCode, { error: { code: e.code, message: e.message }, id: runId, status: current }, runId);
  }
  if (run.status === 'succeeded') {
    if (run.output !== undefined) return { status: 200, contentType: JSON_TYPE, body: run.output, location: runPath(runId) };
    return { status: 200, contentType: TEXT_TYPE, body: run.logTail ?? '', location: runPath(runId) };
  }
  const e = apiError('RUN_NOT_SUCCEEDED', { id: runId, status: run.status, reason: run.reason });
  return json(
    e.statusCode,
    { error: { code: e.code, message: e.message }, id: runId, status: run.status, reason: run.reason ?? null },
    runId,
  );
}
