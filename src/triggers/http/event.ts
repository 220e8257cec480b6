import type { IncomingHttpHeaders } from 'node:http';
import type { FunctionRoute, TaskConfig } from '../../config/types.js';
import type { RunRequest } from '../../runs/types.js';

/**
 * An HTTP function's request as the event API Gateway HTTP APIs hand a Lambda function
 * (payload format 2.0), so a handler written for them reads it unchanged:
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 */
export interface FunctionEvent {
  readonly version: '2.0';
  readonly routeKey: string;
  readonly rawPath: string;
  readonly rawQueryString: string;
  readonly cookies?: string[];
  readonly headers: Record<string, string>;
  readonly queryStringParameters?: Record<string, string>;
  readonly pathParameters?: Record<string, string>;
  readonly requestContext: {
    readonly accountId: string;
    readonly apiId: string;
    readonly domainName: string;
    readonly domainPrefix: string;
    readonly http: { method: string; path: string; protocol: string; sourceIp: string; userAgent: string };
    readonly requestId: string;
    readonly routeKey: string;
    readonly stage: string;
    readonly time: string;
    readonly timeEpoch: number;
    /** auth: apiKeys: the consumer, where a Lambda authorizer's context would be. */
    readonly authorizer?: { lambda: { consumer: string } };
  };
  readonly body?: string;
  readonly isBase64Encoded: boolean;
  readonly stageVariables?: Record<string, string>;
}

/** What the listener read off one request. */
export interface IncomingCall {
  readonly route: FunctionRoute;
  readonly method: string;
  /** The URL as sent: path and query string. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly params: Record<string, string>;
  readonly body: Buffer;
  readonly sourceIp: string;
  readonly httpVersion: string;
  readonly requestId: string;
  readonly receivedAt: number;
  /** auth: apiKeys: the name of the key's consumer. */
  readonly consumer?: string;
}

/**
 * Bodies API Gateway passes as text; anything else is base64 with isBase64Encoded, so bytes
 * survive the JSON of the event exactly.
 */
const TEXT_TYPES = [/^text\//, /^application\/(?:json|xml|javascript|x-www-form-urlencoded|graphql)\b/, /\+(?:json|xml)\b/];
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function bodyOf(body: Buffer, contentType: string | undefined): { body?: string; isBase64Encoded: boolean } {
  if (body.length === 0) return { isBase64Encoded: false };
  const type = (contentType ?? '').toLowerCase();
  if (TEXT_TYPES.some((re) => re.test(type))) {
    try {
      return { body: utf8.decode(body), isBase64Encoded: false };
    } catch {
      // Declared text but not UTF-8: the bytes as they are, base64.
    }
  }
  return { body: body.toString('base64'), isBase64Encoded: true };
}

/** Repeated values are joined with commas, as API Gateway does for headers and query parameters. */
function queryOf(raw: string): Record<string, string> | undefined {
  if (raw === '') return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = k in out ? `${out[k]},${v}` : v;
  return out;
}

export function functionEvent(call: IncomingCall, host: string): FunctionEvent {
  const q = call.url.indexOf('?');
  const rawPath = q === -1 ? call.url : call.url.slice(0, q);
  const rawQueryString = q === -1 ? '' : call.url.slice(q + 1);
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, value] of Object.entries(call.headers)) {
    if (value === undefined) continue;
    // API Gateway moves cookies out of the headers into `cookies`.
    if (name === 'cookie') cookies = (Array.isArray(value) ? value.join('; ') : value).split(/;\s*/).filter((c) => c !== '');
    else headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const routeKey = call.route.method === 'ANY' ? `ANY ${call.route.path}` : call.route.key;
  const params = Object.keys(call.params).length > 0 ? { ...call.params } : undefined;
  const when = new Date(call.receivedAt);
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    ...(cookies && { cookies }),
    headers,
    ...(queryOf(rawQueryString) && { queryStringParameters: queryOf(rawQueryString) }),
    ...(params && { pathParameters: params }),
    requestContext: {
      accountId: 'runlet',
      apiId: 'runlet',
      domainName: host,
      domainPrefix: host.split('.')[0] ?? host,
      http: {
        method: call.method,
        path: rawPath,
        protocol: `HTTP/${call.httpVersion}`,
        sourceIp: call.sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: call.requestId,
      routeKey,
      stage: '$default',
      time: apiGatewayTime(when),
      timeEpoch: call.receivedAt,
      ...(call.consumer !== undefined && { authorizer: { lambda: { consumer: call.consumer } } }),
    },
    ...bodyOf(call.body, headers['content-type']),
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** "12/Mar/2020:19:03:58 +0000", API Gateway's requestContext.time. */
function apiGatewayTime(d: Date): string {
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/**
 * How long a request's dedupe key is kept. Every request is its own run (its key holds a
 * fresh request id), so the key guards nothing past the request itself; a short life keeps
 * a busy function from filling Redis with keys nobody will ask for again.
 */
const FUNCTION_DEDUPE_TTL_MS = 60_000;

/** The run one request asks for: the event as its JSON payload, never deduped against another request. */
export function functionRequest(task: TaskConfig, event: FunctionEvent): RunRequest {
  return {
    task: task.name,
    trigger: 'http',
    dedupeKey: `${task.name}:http:${event.requestContext.requestId}`,
    dedupeTtlMs: FUNCTION_DEDUPE_TTL_MS,
    payload: event,
    cause: `${event.requestContext.http.method} ${event.rawPath}${event.requestContext.authorizer ? ` by ${event.requestContext.authorizer.lambda.consumer}` : ''}`,
  };
}
