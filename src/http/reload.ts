import type { FastifyPluginAsync } from 'fastify';
import type { ConfigChanges } from '../config/diff.js';
import { ConfigError } from '../config/errors.js';
import { apiError } from './errors.js';
import { actor, type ApiTokens } from './auth.js';
import type { AuditLog } from '../runs/audit.js';

/**
 * POST /api/reload (admin): the daemon reads its config file again (as SIGHUP does), and the
 * tokens file (RUNLET_TOKENS_FILE), which is how tokens are changed. 200 with what changed and
 * what needs a restart; 422 with every error of a file it refused: a refused config changes
 * nothing, a refused tokens file keeps the tokens in use.
 */
export const reloadRoutes: FastifyPluginAsync<{ reload?: () => Promise<ConfigChanges>; tokens: ApiTokens; audit: AuditLog }> = async (
  app,
  { reload, tokens, audit },
) => {
  app.post('/reload', async (req) => {
    try {
      const changes = reload ? await reload() : undefined;
      tokens.reload();
      await audit.record({ ...actor(req), action: 'reload', target: changes?.file ?? 'tokens' });
      return { ...changes, tokens: tokens.count };
    } catch (err) {
      if (err instanceof ConfigError)
        throw apiError('CONFIG_INVALID', { file: err.issues[0]?.file ?? 'the config file', issues: err.message });
      throw apiError('RELOAD_FAILED', { detail: (err as Error).message });
    }
  });
};
