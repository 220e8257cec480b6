import type { FastifyPluginAsync } from 'fastify';
import type { ConfigChanges } from '../config/diff.js';
import { ConfigError } from '../config/errors.js';
import { apiError } from './errors.js';

/**
 * POST /api/reload: the daemon reads its config file again (as SIGHUP does). 200 with what
 * changed and what needs a restart; 422 with every error of a file it refused, in which case
 * nothing changed.
 */
export const reloadRoutes: FastifyPluginAsync<{ reload: () => Promise<ConfigChanges> }> = async (app, { reload }) => {
  app.post('/reload', async () => {
    try {
      return await reload();
    } catch (err) {
      if (err instanceof ConfigError)
        throw apiError('CONFIG_INVALID', { file: err.issues[0]?.file ?? 'the config file', issues: err.message });
      throw apiError('RELOAD_FAILED', { detail: (err as Error).message });
    }
  });
};
