import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { apiError } from './errors.js';

/**
 * Bearer-token check for everything under /api when RUNLET_TOKEN is set. Hashing both
 * sides first gives equal-length buffers, so the comparison is constant-time whatever the
 * length of what was sent.
 */
export function requireToken(app: FastifyInstance, token: string | undefined): void {
  if (!token) return;
  const expected = createHash('sha256').update(token).digest();
  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization ?? '';
    const sent = header.startsWith('Bearer ') ? header.slice(7) : '';
    const actual = createHash('sha256').update(sent).digest();
    if (!sent || !timingSafeEqual(expected, actual)) throw apiError('UNAUTHORIZED', {});
  });
}
