import { formatBytes, formatDuration } from '../lib/format.js';

/**
 * Every error the ops API answers with, in one place: a stable code, the status, and a
 * message template. Handlers throw `apiError(code, params)`; the server's error handler
 * turns it (and fastify's own errors) into `{ error: { code, message } }`.
 */
export const API_ERRORS = {
  // Pages on other sites (src/http/origin.ts): the message names the header and the way to allow it.
  HOST_NOT_ALLOWED: {
    status: 421,
    message: (p: { host: string; allowed: string }) =>
      `refused Host "${p.host}": this daemon answers to ${p.allowed} only, so that a page on another site cannot reach it through DNS rebinding. ` +
      'To reach runlet under this name (a reverse proxy, a tunnel), add the name to RUNLET_ALLOWED_HOSTS (comma-separated)',
  },
  CROSS_ORIGIN: {
    status: 403,
    message: (p: { header: string; value: string; method: string; url: string }) =>
      `refused ${p.method} ${p.url} from another origin (${p.header}: ${p.value}): changes are accepted from the dashboard on this daemon's own origin, ` +
      'or from clients that send no Origin (the runlet CLI, curl, a server). Behind a reverse proxy, pass the Host header through (nginx: proxy_set_header Host $host) and list that name in RUNLET_ALLOWED_HOSTS',
  },
  UNAUTHORIZED: {
    status: 401,
    message: (_p: Record<string, never>) => 'missing or wrong bearer token (set Authorization: Bearer $RUNLET_TOKEN)',
  },
  FORBIDDEN: {
    status: 403,
    message: (p: { name: string; role: string; need: string; method: string; url: string }) =>
      `${p.name} (role ${p.role}) may not ${p.method} ${p.url}: it needs the ${p.need} role`,
  },
  TASK_NOT_FOUND: {
    status: 404,
    message: (p: { task: string; hint?: string }) => `no task named "${p.task}"${p.hint ? ` (did you mean "${p.hint}"?)` : ''}`,
  },
  RUN_NOT_FOUND: { status: 404, message: (p: { id: string }) => `no run with id "${p.id}" (it may have been removed by retention)` },
  INVALID_PAYLOAD: { status: 400, message: (p: { detail: string }) => `the request body must be JSON: ${p.detail}` },
  INVALID_BODY: { status: 400, message: (p: { detail: string }) => p.detail },
  INVALID_QUERY: { status: 400, message: (p: { detail: string }) => p.detail },
  RUN_FINISHED: { status: 409, message: (p: { id: string; status: string }) => `run ${p.id} already ended as ${p.status}` },
  RUN_NOT_ENDED: {
    status: 409,
    message: (p: { id: string; status: string }) =>
      `run ${p.id} is still ${p.status}: only a run that ended can be retried (cancel it, or wait for it to end)`,
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    message: (p: { limit: number; task?: string; setting?: string }) =>
      p.task
        ? `the payload is larger than task "${p.task}" accepts (${p.setting ?? 'maxPayload'}: ${formatBytes(p.limit)}); nothing was queued`
        : `the request body is larger than ${formatBytes(p.limit)}; nothing was queued`,
  },
  // Webhooks (POST /hooks/<task>): src/http/hooks.ts.
  WEBHOOK_NOT_CONFIGURED: {
    status: 404,
    message: (p: { task: string }) => `task "${p.task}" has no webhook (add webhook: to it in the config to accept POST /hooks/${p.task})`,
  },
  WEBHOOK_NEEDS_RESTART: {
    status: 404,
    message: (p: { task: string }) =>
      `task "${p.task}" was given a webhook by a config reload; webhook routes are made when the daemon starts, so POST /hooks/${p.task} is accepted after a restart`,
  },
  WEBHOOK_UNAUTHORIZED: {
    status: 401,
    message: (p: { why: string; expected: string }) => `${p.why}; expected ${p.expected}. Nothing was queued`,
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    message: (p: { method: string; url: string; allow: string }) => `${p.url} accepts ${p.allow} only, not ${p.method}`,
  },
  BODY_NOT_UTF8: {
    status: 415,
    message: (p: { byteOffset: number }) =>
      `the body is not valid UTF-8 (at byte ${p.byteOffset}): webhook payloads are text, so send binary data encoded (base64, hex); nothing was queued`,
  },
  INVALID_HEADER: {
    status: 400,
    message: (p: { header: string; detail: string }) => `header ${p.header}: ${p.detail}; nothing was queued`,
  },
  RATE_LIMITED: {
    status: 429,
    message: (p: { task: string; count: number; perMs: number; retryAfterS: number }) =>
      `task "${p.task}" accepts at most ${p.count} webhook request(s) per ${formatDuration(p.perMs)}; retry in ${p.retryAfterS}s. Nothing was queued`,
  },
  RUN_NOT_SUCCEEDED: {
    status: 502,
    message: (p: { id: string; status: string; reason?: string }) => `run ${p.id} ended ${p.status}${p.reason ? `: ${p.reason}` : ''}`,
  },
  RESULT_TIMEOUT: {
    status: 504,
    message: (p: { id: string; waitedMs: number; status: string }) =>
      `run ${p.id} did not end within ${formatDuration(p.waitedMs)} (it is ${p.status} and goes on; GET /api/runs/${p.id} for its outcome)`,
  },
  // Change streams (/api/streams): src/http/streams.ts.
  STREAM_NOT_CONFIGURED: {
    status: 404,
    message: (p: { task: string }) => `task "${p.task}" has no change stream (add mongo: to it in the config to watch a collection)`,
  },
  // POST /api/reload: src/http/reload.ts. The issues as `runlet validate` prints them.
  CONFIG_INVALID: {
    status: 422,
    message: (p: { file: string; issues: string }) =>
      `${p.file} has errors; the daemon goes on with the config it had, unchanged:\n${p.issues}`,
  },
  RELOAD_FAILED: {
    status: 500,
    message: (p: { detail: string }) => `the reload failed: ${p.detail}`,
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
