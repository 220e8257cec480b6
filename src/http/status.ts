import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from './deps.js';

/** GET /api/status: the daemons alive on this Redis, runs in progress, and what fires next. */
export const statusRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.get('/status', async () => deps.status());
};
