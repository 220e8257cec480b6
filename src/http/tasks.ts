import type { FastifyPluginAsync } from 'fastify';
import type { TaskConfig } from '../config/types.js';
import { closest as didYouMean } from '../config/did-you-mean.js';
import type { HttpDeps } from './deps.js';
import { apiError } from './errors.js';
import { runSummary } from './views.js';

/** /api/tasks: what is configured, when it fires next, how it last ran; manual runs. */
export const taskRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  const taskOr404 = (name: string): TaskConfig => {
    const task = deps.config.tasks[name];
    if (!task) throw apiError('TASK_NOT_FOUND', { task: name, hint: didYouMean(name, Object.keys(deps.config.tasks)) });
    return task;
  };

  const describe = async (task: TaskConfig) => {
    const last = await deps.store.last(task.name);
    const next = deps.nextFireTimes(task.name, 3);
    return {
      name: task.name,
      description: task.description,
      image: task.image,
      command: task.command,
      triggers: [...(task.schedule ? [{ type: 'cron', schedule: task.schedule, timezone: task.timezone }] : []), { type: 'manual' }],
      limits: { memoryBytes: task.memoryBytes, cpus: task.cpus, timeoutMs: task.timeoutMs, killGraceMs: task.killGraceMs, pids: task.pids },
      nextRunAt: next[0] !== undefined ? new Date(next[0]).toISOString() : null,
      nextRuns: next.map((t) => new Date(t).toISOString()),
      lastRun: last ? runSummary(last) : null,
    };
  };

  app.get('/tasks', async () => ({ tasks: await Promise.all(Object.values(deps.config.tasks).map(describe)) }));

  app.get<{ Params: { name: string } }>('/tasks/:name', async (req) => describe(taskOr404(req.params.name)));

  // A manual run: the JSON body, if any, is the run's payload. 202 once it is durably queued.
  app.post<{ Params: { name: string } }>('/tasks/:name/runs', async (req, reply) => {
    const task = taskOr404(req.params.name);
    const { runId } = await deps.submitManual(task.name, req.body);
    return reply.code(202).header('location', `/api/runs/${runId}`).send({ id: runId, status: 'queued' });
  });
};
