import type { RunRecord, RunStatus } from '../../runs/types.js';

/**
 * What an HTTP function's request is answered with, independent of the HTTP framework: the
 * run's result read in Lambda's proxy format (as API Gateway HTTP APIs read a Lambda's
 * return value), or the gateway's own 5xx when the run gave none.
 */
export interface FunctionAnswer {
  readonly status: number;
  /** Lower-case names; a list is sent as repeated headers (set-cookie). */
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
}

/** Every answer that has a run names it, so a caller's report leads to its logs. */
export const RUN_ID_HEADER = 'x-runlet-run-id';

const JSON_TYPE = 'application/json';

/** Headers a function may not set: the listener frames the response itself. */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'trailer', RUN_ID_HEADER]);

function gateway(
  status: number,
  runId: string | undefined,
  body: Record<string, unknown>,
  extra: Record<string, string> = {},
): FunctionAnswer {
  return {
    status,
    headers: { 'content-type': JSON_TYPE, ...(runId && { [RUN_ID_HEADER]: runId }), ...extra },
    body: Buffer.from(JSON.stringify({ ...body, ...(runId && { runId }) })),
  };
}

/** API Gateway's own refusals: the same words and status, `{ "message": ... }`. */
export const refusals = {
  unauthorized: () => gateway(401, undefined, { message: 'Unauthorized' }, { 'www-authenticate': 'Bearer' }),
  forbidden: () => gateway(403, undefined, { message: 'Forbidden' }),
  tooMany: (retryAfterS: number) => gateway(429, undefined, { message: 'Too Many Requests' }, { 'retry-after': String(retryAfterS) }),
  tooLarge: (limit: number) => gateway(413, undefined, { message: 'Request Entity Too Large', limitBytes: limit }),
  notFound: () => gateway(404, undefined, { message: 'Not Found' }),
};

/** Past `maxQueued`: nothing was run; come back later. */
export function busyAnswer(runId: string, reason: string, retryAfterS: number): FunctionAnswer {
  return gateway(503, runId, { message: 'Service Unavailable', reason }, { 'retry-after': String(retryAfterS) });
}

/** The request's own deadline passed; `status` is where the run stood then. */
export function timeoutAnswer(runId: string, status: RunStatus | 'unknown', cancelled: boolean): FunctionAnswer {
  return gateway(504, runId, { message: 'Gateway Timeout', status, ...(cancelled && { cancelled: true }) });
}

/**
 * The ended run's answer:
 * - succeeded with a result that has `statusCode`: that response (headers, multiValueHeaders,
 *   cookies as Set-Cookie, body, base64-decoded when isBase64Encoded);
 * - succeeded with any other JSON result: 200 with that JSON as the body, as API Gateway
 *   does for a Lambda that returns no statusCode; no output.json at all is `null`;
 * - succeeded with an output that is not JSON, or an invalid response: 502;
 * - failed, timed out, OOM-killed, cancelled, lost: 502 with its status and reason.
 */
export function runAnswer(run: RunRecord): FunctionAnswer {
  if (run.status !== 'succeeded') return gateway(502, run.id, { message: 'Bad Gateway', status: run.status, reason: run.reason ?? null });
  if (run.output === undefined) return ok(run.id, 200, { 'content-type': JSON_TYPE }, Buffer.from('null'));
  let result: unknown;
  try {
    result = JSON.parse(run.output);
  } catch {
    return gateway(502, run.id, {
      message: 'Bad Gateway',
      status: run.status,
      reason: 'the function wrote an output.json that is not JSON',
    });
  }
  if (!isProxyResult(result)) return ok(run.id, 200, { 'content-type': JSON_TYPE }, Buffer.from(run.output));
  const problem = proxyProblem(result);
  if (problem) return gateway(502, run.id, { message: 'Bad Gateway', status: run.status, reason: `invalid response: ${problem}` });
  const headers: Record<string, string | string[]> = {};
  const add = (name: string, value: unknown) => {
    const key = name.toLowerCase();
    if (FRAMING.has(key)) return;
    const text = String(value);
    const had = headers[key];
    headers[key] = had === undefined ? text : key === 'set-cookie' ? [...(Array.isArray(had) ? had : [had]), text] : `${had},${text}`;
  };
  for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) for (const v of values as unknown[]) add(name, v);
  for (const [name, value] of Object.entries(result.headers ?? {})) add(name, value);
  for (const cookie of result.cookies ?? []) add('set-cookie', cookie);
  if (headers['content-type'] === undefined) headers['content-type'] = JSON_TYPE;
  const text = typeof result.body === 'string' ? result.body : '';
  return ok(run.id, result.statusCode, headers, Buffer.from(text, result.isBase64Encoded ? 'base64' : 'utf8'));
}

function ok(runId: string, status: number, headers: Record<string, string | string[]>, body: Buffer): FunctionAnswer {
  return { status, headers: { ...headers, [RUN_ID_HEADER]: runId }, body };
}

interface ProxyResult {
  statusCode: number;
  headers?: Record<string, unknown>;
  multiValueHeaders?: Record<string, unknown>;
  cookies?: unknown[];
  body?: unknown;
  isBase64Encoded?: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isProxyResult = (v: unknown): v is ProxyResult => isObject(v) && 'statusCode' in v;

function proxyProblem(r: ProxyResult): string | undefined {
  if (!Number.isInteger(r.statusCode) || r.statusCode < 100 || r.statusCode > 599)
    return 'statusCode must be a whole number from 100 to 599';
  if (r.headers !== undefined && !isObject(r.headers)) return 'headers must be an object';
  if (r.multiValueHeaders !== undefined && (!isObject(r.multiValueHeaders) || !Object.values(r.multiValueHeaders).every(Array.isArray)))
    return 'multiValueHeaders must be an object of lists';
  if (r.cookies !== undefined && !(Array.isArray(r.cookies) && r.cookies.every((c) => typeof c === 'string')))
    return 'cookies must be a list of strings';
  if (r.body !== undefined && r.body !== null && typeof r.body !== 'string') return 'body must be a string (JSON.stringify it)';
  return undefined;
}
