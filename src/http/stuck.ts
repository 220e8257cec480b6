import type { FastifyPluginAsync } from 'fastify';
import type { StuckItem } from '../ops/stuck.js';
import type { HttpDeps } from './deps.js';

/** The API form of a stuck item: times as ISO strings, how long as a number. */
export function stuckView(item: StuckItem, now = Date.now()) {
  return {
    kind: item.kind,
    task: item.task,
    runId: item.runId ?? null,
    since: new Date(item.since).toISOString(),
    forMs: Math.max(0, now - item.since),
    detail: item.detail,
    waiting: item.waiting ? { code: item.waiting.code, text: item.waiting.text } : null,
  };
}

/** GET /api/stuck: what needs a person now (runs past their deadline or queued too long, stalled streams). */
export const stuckRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.get('/stuck', async () => {
    const now = Date.now();
    return { stuck: (await deps.stuck(now)).map((i) => stuckView(i, now)) };
  });
};
