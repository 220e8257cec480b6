import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from './deps.js';

/**
 * GET /api/nodes: every node of the cluster, live or gone: its last heartbeat, the runs it
 * holds, memory in use against its budget, and its pools' slots (ops/nodes.ts).
 */
export const nodeRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.get('/nodes', async () => ({ nodes: await deps.nodes() }));
};
