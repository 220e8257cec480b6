import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from './deps.js';

/** PLACEHOLDER (being written): change-stream state on the ops API. */
export const streamRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async () => {};
