import type { FastifyPluginAsync } from 'fastify';
import type { AuditLog } from '../runs/audit.js';
import { AUDIT_MAXLEN } from '../runs/audit.js';
import { abilities } from './roles.js';

/** GET /api/whoami (the dashboard hides what the role may not do) and GET /api/audit (who did what). */
export const accessRoutes: FastifyPluginAsync<{ audit: AuditLog }> = async (app, { audit }) => {
  app.get('/whoami', async (req) => ({ name: req.principal.name, role: req.principal.role, may: abilities(req.principal.role) }));

  app.get<{ Querystring: { limit?: string } }>('/audit', async (req) => {
    const limit = Math.min(AUDIT_MAXLEN, Math.max(1, Number(req.query.limit ?? 100) || 100));
    return { entries: await audit.latest(limit) };
  });
};
