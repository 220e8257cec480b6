import { actor } from './auth.js';
import type { AuditLog } from '../runs/audit.js';
import type { FastifyPluginAsync } from 'fastify';
import type { TaskConfig } from '../config/types.js';
import { closest as didYouMean } from '../config/did-you-mean.js';
import { describeStream } from '../triggers/mongo/view.js';
import type { HttpDeps } from './deps.js';
import { apiError } from './errors.js';

type MongoTask = TaskConfig & { mongo: NonNullable<TaskConfig['mongo']> };

const hasMongo = (t: TaskConfig): t is MongoTask => t.mongo !== undefined;

/**
 * /api/streams: the MongoDB change streams, as every daemon wrote them to Redis (state,
 * lease holder, last change, lag, last error), and the operator's reset.
 */
export const streamRoutes: FastifyPluginAsync<{ deps: HttpDeps; audit: AuditLog }> = async (app, { deps, audit }) => {
  const streamOr404 = (name: string): MongoTask => {
    const task = deps.config.tasks[name];
    if (!task) throw apiError('TASK_NOT_FOUND', { task: name, hint: didYouMean(name, Object.keys(deps.config.tasks)) });
    if (!hasMongo(task)) throw apiError('STREAM_NOT_CONFIGURED', { task: name });
    return task;
  };

  app.get('/streams', async () => ({
    streams: await Promise.all(
      Object.values(deps.config.tasks)
        .filter(hasMongo)
        .map((t) => describeStream(deps.redis, t)),
    ),
  }));

  app.get<{ Params: { task: string } }>('/streams/:task', async (req) => describeStream(deps.redis, streamOr404(req.params.task)));

  // The way out of history lost (and a way to skip a backlog): forget the resume token. The
  // holder loses its lease at its next renew; whoever takes it next opens at "now". Changes
  // made before then that had no run yet never get one: an explicit operator choice.
  app.post<{ Params: { task: string } }>('/streams/:task/reset', async (req) => {
    const task = streamOr404(req.params.task);
    const fence = await deps.resetStream(task.name);
    await audit.record({ ...actor(req), action: 'stream-reset', target: task.name });
    req.log.warn({ task: task.name, fence }, 'change stream reset: it restarts from now; changes not yet run are skipped');
    return {
      task: task.name,
      reset: true,
      message:
        'the stored resume token is cleared; the stream restarts from now within a third of the lease (5 s by default). Changes made before then that had no run yet will not get one',
      stream: await describeStream(deps.redis, task),
    };
  });
};
