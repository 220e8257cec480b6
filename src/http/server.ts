import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { NeedsRestart } from '../config/diff.js';
import type { RunletConfig } from '../config/types.js';
import { formatBytes } from '../lib/format.js';
import { ApiTokens, requireToken } from './auth.js';
import { AuditLog } from '../runs/audit.js';
import { accessRoutes } from './access.js';
import { roleNeeded } from './roles.js';
import type { HttpDeps } from './deps.js';
import { ApiError, apiError, API_ERRORS } from './errors.js';
import { dashboardRoutes } from './dashboard/routes.js';
import { healthRoutes } from './health.js';
import { hostPolicy } from './hosts.js';
import { hookRoutes } from './hooks.js';
import { liveRoutes } from './live.js';
import { metricsRoutes } from './metrics.js';
import { nodeRoutes } from './nodes.js';
import { guardOrigin } from './origin.js';
import { reloadRoutes } from './reload.js';
import { runRoutes } from './runs.js';
import { statusRoutes } from './status.js';
import { streamRoutes } from './streams.js';
import { stuckRoutes } from './stuck.js';
import { taskRoutes } from './tasks.js';
import { usageRoutes } from './usage.js';

/** The server reads no body larger than this; each task's own maxPayload is checked per route. */
export function maxBodyBytes(config: RunletConfig): number {
  return Math.max(1024 * 1024, ...Object.values(config.tasks).map((t) => t.maxPayloadBytes));
}

/**
 * What of `next` a server built from `started` cannot take on until it is built again (a
 * restart): fastify fixes routes and their body limits when the server starts. So a
 * webhook added to a task gets no route (POST /hooks/<task> answers 404), and a changed
 * `maxBody` or `rateLimit` keeps the value of the start; the rest of a webhook (secret,
 * signature, respond, ...) is read per request (hooks.ts).
 */
export function fixedAtStart(started: RunletConfig, next: RunletConfig): NeedsRestart[] {
  const out: NeedsRestart[] = [];
  for (const task of Object.values(next.tasks)) {
    const hook = task.webhook;
    const was = started.tasks[task.name]?.webhook;
    if (!hook) continue;
    const path = `tasks.${task.name}.webhook`;
    if (!was)
      out.push({ path, why: `POST /hooks/${task.name} has no route until a restart (webhook routes are made when the daemon starts)` });
    else {
      if (hook.maxBodyBytes !== was.maxBodyBytes)
        out.push({ path: `${path}.maxBody`, why: `stays ${formatBytes(was.maxBodyBytes)} until a restart (fixed on the route at start)` });
      if (JSON.stringify(hook.rateLimit) !== JSON.stringify(was.rateLimit))
        out.push({ path: `${path}.rateLimit`, why: 'stays as it was at start until a restart (fixed on the route at start)' });
    }
  }
  const limit = maxBodyBytes(started);
  for (const task of Object.values(next.tasks))
    if (task.maxPayloadBytes > limit)
      out.push({
        path: `tasks.${task.name}.maxPayload`,
        why: `the ops API reads bodies up to ${formatBytes(limit)} (set at start from the largest maxPayload) until a restart`,
      });
  return out;
}

/**
 * The ops server: one plugin per area. Every route first checks Host and, for changes,
 * Origin (origin.ts); then /healthz is open (for load balancers), and everything under
 * /api requires the bearer token when one is configured.
 */
export function buildServer(deps: HttpDeps, logger: Logger): FastifyInstance {
  // Fixed now, though deps.config may be reloaded later (see fixedAtStart).
  const bodyLimit = maxBodyBytes(deps.config);
  const app = Fastify({
    // Request lines are noise at info; errors still reach the log.
    loggerInstance: logger.child({ component: 'http' }, { level: 'warn' }) as FastifyBaseLogger,
    bodyLimit,
  });

  // An empty body is "no payload", not a JSON error; anything else must parse.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(apiError('INVALID_PAYLOAD', { detail: (err as Error).message }), undefined);
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof ApiError) return reply.code(err.statusCode).send({ error: { code: err.code, message: err.message } });
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply
        .code(413)
        .send({ error: { code: 'PAYLOAD_TOO_LARGE', message: API_ERRORS.PAYLOAD_TOO_LARGE.message({ limit: bodyLimit }) } });
    }
    if (err.statusCode && err.statusCode < 500)
      return reply.code(err.statusCode).send({ error: { code: err.code ?? 'BAD_REQUEST', message: err.message } });
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: { code: 'INTERNAL', message: API_ERRORS.INTERNAL.message({}) } });
  });
  app.setNotFoundHandler((req, reply) => {
    const e = apiError('NOT_FOUND', { method: req.method, url: req.url.split('?')[0] });
    return reply.code(e.statusCode).send({ error: { code: e.code, message: e.message } });
  });

  // Before any plugin, so every route (and the 404 handler) inherits it.
  guardOrigin(app, deps.hosts ?? hostPolicy('127.0.0.1'));
  const tokens = deps.tokens ?? new ApiTokens(deps.token);
  const audit = new AuditLog(deps.redis);
  app.register(healthRoutes, { deps });
  // The dashboard's files carry no data, so they need no token; the data under /api does.
  app.register(dashboardRoutes);
  // Webhooks carry their own auth (a signature per task), never the ops token.
  app.register(hookRoutes, { deps, prefix: '/hooks' });
  if (deps.metrics) app.register(metricsRoutes, { registry: deps.metrics, tokens });
  app.register(
    async (api) => {
      requireToken(api, tokens, roleNeeded);
      await api.register(accessRoutes, { audit });
      await api.register(taskRoutes, { deps, audit });
      await api.register(runRoutes, { deps, audit });
      await api.register(statusRoutes, { deps });
      await api.register(nodeRoutes, { deps });
      await api.register(usageRoutes, { deps });
      await api.register(stuckRoutes, { deps });
      await api.register(streamRoutes, { deps, audit });
      if (deps.reload || deps.tokens) await api.register(reloadRoutes, { reload: deps.reload, tokens, audit });
      if (deps.changes) await api.register(liveRoutes, { feed: deps.changes });
    },
    { prefix: '/api' },
  );
  return app;
}
