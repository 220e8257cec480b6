import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { requireToken } from './auth.js';

/** GET /metrics in Prometheus text format; behind the bearer token when one is set. */
export const metricsRoutes: FastifyPluginAsync<{ registry: Registry; token?: string }> = async (app, { registry, token }) => {
  requireToken(app, token);
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
};
