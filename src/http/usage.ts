import type { FastifyPluginAsync } from 'fastify';
import { usageReport } from '../runs/daily-usage.js';
import type { HttpDeps } from './deps.js';
import { apiError } from './errors.js';

/** Daily totals are kept about this long (runs/daily-usage.ts). */
const MAX_DAYS = 400;

/**
 * GET /api/usage?days=30: container-seconds, GB-seconds and runs per task per UTC day, next
 * to what an always-on worker with the same memory limit would have reserved.
 */
export const usageRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.get<{ Querystring: { days?: string } }>('/usage', async (req) => {
    const days = req.query.days === undefined ? 30 : Number(req.query.days);
    if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
      throw apiError('INVALID_QUERY', { detail: `days must be a whole number from 1 to ${MAX_DAYS}, got "${req.query.days}"` });
    }
    return usageReport(deps.redis, deps.config.tasks, days);
  });
};
