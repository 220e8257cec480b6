import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from './deps.js';

/** GET /healthz: 200 when Redis and the Docker engine answer, 503 naming what does not. */
export const healthRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.get('/healthz', async (_req, reply) => {
    const checks = await deps.health();
    const ok = Object.values(checks).every((c) => c.ok);
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unhealthy', checks });
  });
};
