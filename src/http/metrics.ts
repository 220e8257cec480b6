import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { requireToken, type ApiTokens } from './auth.js';

/** GET /metrics in Prometheus text format; behind the bearer token (any role) when one is set. */
export const metricsRoutes: FastifyPluginAsync<{ registry: Registry; tokens: ApiTokens }> = async (app, { registry, tokens }) => {
  requireToken(app, tokens, () => 'viewer');
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
};
