import { newRunId } from '../runs/store.js';
import type { RunRequest } from '../runs/types.js';

/**
 * A run asked for by a person (API, CLI, dashboard). Each request is its own event, so
 * its dedupe key is fresh; the payload is whatever JSON they sent.
 */
export function manualRequest(task: string, payload: unknown): RunRequest {
  return { task, trigger: 'manual', dedupeKey: `${task}:manual:${newRunId()}`, payload };
}
