import type { FastifyRequest } from 'fastify';
import type { Role } from '../config/tokens.js';

/**
 * The role each ops API route needs, in one table (auth.ts checks it before the handler).
 * Reading is a viewer's, except what a run was given or printed (logs; payloads and outputs
 * are left out of a viewer's answers, views.ts); acting on runs and tasks is an operator's;
 * changing what the daemon runs or who may use it (reload, which also reads the tokens file
 * again; resetting a change stream) is an admin's. A route not listed needs admin: a new
 * route is closed until someone decides who may use it.
 */
const TABLE: Readonly<Record<string, Role>> = {
  'GET /api/runs/:id/logs': 'operator',
  'POST /api/tasks/:name/runs': 'operator',
  'POST /api/tasks/:name/pause': 'operator',
  'POST /api/tasks/:name/resume': 'operator',
  'POST /api/tasks/:name/backfill': 'operator',
  'POST /api/runs/:id/cancel': 'operator',
  'POST /api/runs/:id/retry': 'operator',
  'POST /api/reload': 'admin',
  'POST /api/streams/:task/reset': 'admin',
};

export function roleNeeded(req: FastifyRequest): Role {
  const route = `${req.method} ${req.routeOptions.url ?? ''}`;
  if (Object.hasOwn(TABLE, route)) return TABLE[route]!;
  return req.method === 'GET' || req.method === 'HEAD' ? 'viewer' : 'admin';
}

/** What a role may do, for GET /api/whoami: the dashboard hides the rest. */
export function abilities(role: Role): Record<string, boolean> {
  const operator = role === 'operator' || role === 'admin';
  return {
    run: operator,
    cancel: operator,
    retry: operator,
    pause: operator,
    backfill: operator,
    logs: operator,
    payloads: operator,
    reload: role === 'admin',
  };
}
