import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from './deps.js';

/** PLACEHOLDER (being written): POST /hooks/<task>. */
export const hookRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async () => {};
