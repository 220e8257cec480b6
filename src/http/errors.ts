import { formatBytes } from '../lib/format.js';

/**
 * Every error the ops API answers with, in one place: a stable code, the status, and a
 * message template. Handlers throw `apiError(code, params)`; the server's error handler
 * turns it (and fastify's own errors) into `{ error: { code, message } }`.
 */
export const API_ERRORS = {
  UNAUTHORIZED: { status: 401, message: (_p: Record<string, never>) => 'missing or wrong bearer token (set Authorization: Bearer $RUNLET_TOKEN)' },
  TASK_NOT_FOUND: { status: 404, message: (p: { task: string; hint?: string }) => `no task named "${p.task}"${p.hint ? ` (did you mean "${p.hint}"?)` : ''}` },
  RUN_NOT_FOUND: { status: 404, message: (p: { id: string }) => `no run with id "${p.id}" (it may have been removed by retention)` },
  INVALID_PAYLOAD: { status: 400, message: (p: { detail: string }) => `the request body must be JSON: ${p.detail}` },
  INVALID_BODY: { status: 400, message: (p: { detail: string }) => p.detail },
  INVALID_QUERY: { status: 400, message: (p: { detail: string }) => p.detail },
  RUN_FINISHED: { status: 409, message: (p: { id: string; status: string }) => `run ${p.id} already ended as ${p.status}` },
  RUN_NOT_ENDED: {
    status: 409,
    message: (p: { id: string; status: string }) => `run ${p.id} is still ${p.status}: only a run that ended can be retried (cancel it, or wait for it to end)`,
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    message: (p: { limit: number; task?: string }) =>
      p.task ? `the payload is larger than task "${p.task}" accepts (maxPayload: ${formatBytes(p.limit)}); nothing was queued` : `the request body is larger than ${formatBytes(p.limit)}; nothing was queued`,
  },
  NOT_FOUND: { status: 404, message: (p: { method: string; url: string }) => `no route ${p.method} ${p.url}` },
  INTERNAL: { status: 500, message: (_p: Record<string, never>) => 'internal error; the daemon log has the details' },
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function apiError<C extends ApiErrorCode>(code: C, params: Parameters<(typeof API_ERRORS)[C]['message']>[0]): ApiError {
  const def = API_ERRORS[code];
  return new ApiError(code, def.status, (def.message as (p: unknown) => string)(params));
}
