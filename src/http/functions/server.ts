import rateLimit from '@fastify/rate-limit';
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { NeedsRestart } from '../../config/diff.js';
import type { RunletConfig, TaskConfig } from '../../config/types.js';
import { formatBytes } from '../../lib/format.js';
import { FN_RATE_PREFIX } from '../../runs/keys.js';
import { functionEvent, functionRequest } from '../../triggers/http/event.js';
import { matchRoute, routesForPath } from '../../triggers/http/routes.js';
import type { HttpDeps } from '../deps.js';
import { busyAnswer, refusals, runAnswer, timeoutAnswer, type FunctionAnswer } from './answer.js';
import { authorize, corsHeaders, isPreflight, preflightAnswer } from './guard.js';

/** What the functions listener may do: the ops API's ways in, minus everything an operator does. */
export type FunctionDeps = Pick<HttpDeps, 'config' | 'redis' | 'submit' | 'ended' | 'store' | 'cancelRun'>;

/** A queue-full 503 asks the caller to come back after this long. */
const RETRY_AFTER_S = 1;

const functionTasks = (config: RunletConfig): TaskConfig[] => Object.values(config.tasks).filter((t) => t.http);

/** The listener reads no body larger than this; each function's own maxPayload is checked per request. */
export function functionBodyLimit(config: RunletConfig): number {
  return Math.max(1024 * 1024, ...functionTasks(config).map((t) => t.maxPayloadBytes));
}

/** Whether the daemon opens the functions listener: only for a config that has functions (else port 8081 stays free). */
export const hasFunctions = (config: RunletConfig): boolean => functionTasks(config).length > 0;

/** Routes, auth, keys, CORS and timeouts are read per request; only the listener and its body limit are fixed at start. */
export function functionsFixedAtStart(started: RunletConfig, next: RunletConfig): NeedsRestart[] {
  const out: NeedsRestart[] = [];
  if (!hasFunctions(started) && hasFunctions(next))
    for (const t of functionTasks(next))
      out.push({
        path: `tasks.${t.name}.http`,
        why: 'the functions listener (RUNLET_FN_PORT) is opened at start only when a task has http:; restart to serve it',
      });
  const limit = functionBodyLimit(started);
  if (hasFunctions(started))
    for (const t of functionTasks(next))
      if (t.maxPayloadBytes > limit)
        out.push({
          path: `tasks.${t.name}.maxPayload`,
          why: `the functions listener reads bodies up to ${formatBytes(limit)} until a restart`,
        });
  return out;
}

/**
 * The functions listener: every request is matched against the routes of the config now,
 * authorised, rate-limited per API key, turned into one run with the API Gateway event as
 * its payload, and answered from the run's result. Per request:
 *   preflight? → route → auth (401/403) → per-key limit (429) → size (413) → submit
 *   → skipped (queue full): 503 → wait until the request's timeout → answer, or 504.
 */
export async function buildFunctionServer(deps: FunctionDeps, logger: Logger): Promise<FastifyInstance> {
  const bodyLimit = functionBodyLimit(deps.config);
  const app = Fastify({ loggerInstance: logger.child({ component: 'functions' }, { level: 'warn' }) as FastifyBaseLogger, bodyLimit });
  // Bodies are the function's business: bytes in, never parsed here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // @fastify/rate-limit's Redis store: a fixed window per key (INCR + PEXPIRE in one script), so
  // the count is cluster-wide. Key: runlet:fn-rate:<task>:<consumer>.
  await app.register(rateLimit, { global: false, redis: deps.redis, nameSpace: FN_RATE_PREFIX });
  const limiter = app.createRateLimit({
    keyGenerator: (req) => limited.get(req)!.key,
    max: (req) => limited.get(req)!.count,
    timeWindow: (req) => limited.get(req)!.perMs,
  });
  const limited = new WeakMap<FastifyRequest, { key: string; count: number; perMs: number }>();

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(reply, refusals.tooLarge(bodyLimit));
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ message: err.message });
    req.log.error({ err }, 'function request failed');
    return reply.code(500).send({ message: 'Internal Server Error' });
  });

  app.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'],
    url: '*',
    handler: async (req, reply) => {
      const receivedAt = Date.now();
      const tasks = deps.config.tasks;
      const url = req.raw.url ?? '/';
      const path = url.split('?')[0]!;

      if (isPreflight(req.method, req.headers)) {
        const withCors = routesForPath(tasks, path)
          .filter((m) => m.task.http?.cors)
          .map((m) => ({ route: m.route, http: m.task.http! }));
        if (withCors.length > 0) return send(reply, preflightAnswer(withCors, req.headers));
      }
      const match = matchRoute(tasks, req.method, path);
      if (!match) {
        const methods = [...new Set(routesForPath(tasks, path).map((m) => m.route.method))];
        if (methods.length === 0) return send(reply, refusals.notFound());
        return send(reply, {
          ...refusals.notFound(),
          status: 405,
          headers: { 'content-type': 'application/json', allow: methods.join(', ') },
        });
      }
      const { task, route, params } = match;
      const http = task.http!;
      const cors = corsHeaders(http.cors, req.headers);
      const answer = (a: FunctionAnswer) => send(reply, { ...a, headers: { ...a.headers, ...cors } });

      const verdict = authorize(http, req.headers);
      if (!verdict.ok) return answer(verdict.answer);
      if (http.rateLimitPerKey && verdict.consumer !== undefined) {
        limited.set(req, { key: `${task.name}:${verdict.consumer}`, ...http.rateLimitPerKey });
        const rate = await limiter(req);
        if (!rate.isAllowed && rate.isExceeded) return answer(refusals.tooMany(Math.max(1, rate.ttlInSeconds)));
      }
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const event = functionEvent(
        {
          route,
          method: req.method,
          url,
          headers: req.headers,
          params,
          body,
          sourceIp: req.ip,
          httpVersion: req.raw.httpVersion,
          requestId: randomUUID(),
          receivedAt,
          ...(verdict.consumer !== undefined && { consumer: verdict.consumer }),
        },
        String(req.headers.host ?? 'localhost'),
      );
      // The event carries the body (base64 for bytes), so it is what must fit the task's maxPayload.
      if (Buffer.byteLength(JSON.stringify(event)) > task.maxPayloadBytes) return answer(refusals.tooLarge(task.maxPayloadBytes));

      // Every request is its own run: its dedupe key holds a fresh request id (event.ts).
      // Answered only from what submit recorded: a queue-full request is a `skipped` run.
      const res = await deps.submit(functionRequest(task, event));
      if (res.skipped !== undefined) return answer(busyAnswer(res.runId, res.skipped, RETRY_AFTER_S));

      const leftMs = Math.max(0, http.timeoutMs - (Date.now() - receivedAt));
      const run = await deps.ended.waitFor(res.runId, leftMs);
      if (run) return answer(runAnswer(run));
      // Past the deadline nobody will read the result: a run still queued is cancelled so it
      // does not start later for nobody. One already running goes on (as a Lambda invocation
      // does when API Gateway gives up), bounded by the task's own timeout.
      const now = (await deps.store.get(res.runId).catch(() => undefined))?.status ?? 'unknown';
      let cancelled = false;
      if (now === 'queued') cancelled = (await deps.cancelRun(res.runId).catch(() => ({ accepted: false }))).accepted;
      return answer(timeoutAnswer(res.runId, now, cancelled));
    },
  });
  return app;
}

function send(reply: FastifyReply, a: FunctionAnswer): FastifyReply {
  reply.code(a.status);
  for (const [name, value] of Object.entries(a.headers)) reply.header(name, value);
  return reply.send(a.body);
}

/** Opens the listener; returns its URL and how to close it. */
export async function listenFunctions(
  deps: FunctionDeps,
  logger: Logger,
  at: { port: number; host: string },
): Promise<{ url: string; close(): Promise<void> }> {
  const app = await buildFunctionServer(deps, logger);
  await app.listen({ port: at.port, host: at.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : at.port;
  return { url: `http://${at.host === '0.0.0.0' ? '127.0.0.1' : at.host}:${port}`, close: () => app.close() };
}
