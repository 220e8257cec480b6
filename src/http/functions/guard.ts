import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FunctionCors, FunctionRoute, HttpFunctionConfig } from '../../config/types.js';
import { refusals, RUN_ID_HEADER, type FunctionAnswer } from './answer.js';

/**
 * Who may call a function, and what a browser is told about it. Status codes are API
 * Gateway's: a JWT/bearer authorizer refuses with 401 "Unauthorized", a REST API's usage
 * plan with 403 "Forbidden" for a missing or unknown x-api-key.
 */

/** Digests first, so the comparison takes the same time whatever the lengths. */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

const single = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

export type Verdict = { ok: true; consumer?: string } | { ok: false; answer: FunctionAnswer };

export function authorize(http: HttpFunctionConfig, headers: IncomingHttpHeaders): Verdict {
  switch (http.auth) {
    case 'none':
      return { ok: true };
    case 'bearer': {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(single(headers.authorization) ?? '');
      return m && http.secret !== undefined && sameSecret(m[1]!, http.secret)
        ? { ok: true }
        : { ok: false, answer: refusals.unauthorized() };
    }
    case 'apiKeys': {
      const sent = single(headers['x-api-key']);
      if (sent === undefined || sent === '') return { ok: false, answer: refusals.forbidden() };
      // Every key is compared, found or not: the time taken says nothing about which matched.
      let consumer: string | undefined;
      for (const [name, key] of Object.entries(http.apiKeys ?? {})) if (sameSecret(sent, key) && consumer === undefined) consumer = name;
      return consumer === undefined ? { ok: false, answer: refusals.forbidden() } : { ok: true, consumer };
    }
  }
}

/** The origin a response may be read by, or undefined: a disallowed origin gets no CORS header at all. */
function allowedOrigin(cors: FunctionCors | undefined, origin: string | undefined): string | undefined {
  if (!cors || origin === undefined) return undefined;
  if (cors.origins.includes('*')) return '*';
  return cors.origins.includes(origin) ? origin : undefined;
}

/** The headers an actual (not preflight) response carries for the browser. */
export function corsHeaders(cors: FunctionCors | undefined, headers: IncomingHttpHeaders): Record<string, string> {
  const origin = allowedOrigin(cors, single(headers.origin));
  if (origin === undefined) return cors ? { vary: 'origin' } : {};
  return { 'access-control-allow-origin': origin, 'access-control-expose-headers': RUN_ID_HEADER, vary: 'origin' };
}

/** A browser's preflight (OPTIONS with Origin and Access-Control-Request-Method). */
export function isPreflight(method: string, headers: IncomingHttpHeaders): boolean {
  return method === 'OPTIONS' && headers.origin !== undefined && headers['access-control-request-method'] !== undefined;
}

/**
 * The answer to a preflight, without a container. `routes` are the routes of the path with
 * CORS on; the one for the requested method decides. 204 either way, as API Gateway
 * answers: without CORS headers the browser refuses the call itself.
 */
export function preflightAnswer(
  routes: ReadonlyArray<{ route: FunctionRoute; http: HttpFunctionConfig }>,
  headers: IncomingHttpHeaders,
): FunctionAnswer {
  const wanted = String(single(headers['access-control-request-method']) ?? '').toUpperCase();
  const hit = routes.find((r) => r.route.method === wanted || r.route.method === 'ANY');
  const cors = hit?.http.cors;
  const origin = allowedOrigin(cors, single(headers.origin));
  const methods = cors?.methods ?? [...new Set(routes.filter((r) => r.http.cors === cors).map((r) => r.route.method))];
  const allowed = origin !== undefined && cors !== undefined && (methods.includes(wanted) || methods.includes('ANY'));
  if (!allowed) return { status: 204, headers: { vary: 'origin' }, body: Buffer.alloc(0) };
  return {
    status: 204,
    headers: {
      'access-control-allow-origin': origin,
      'access-control-allow-methods': methods.includes('ANY') ? wanted : methods.join(', '),
      'access-control-allow-headers': cors.headers.join(', '),
      'access-control-max-age': String(Math.floor(cors.maxAgeMs / 1000)),
      vary: 'origin',
    },
    body: Buffer.alloc(0),
  };
}
