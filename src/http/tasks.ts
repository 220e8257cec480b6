import type { FastifyPluginAsync } from 'fastify';
import type { TaskConfig } from '../config/types.js';
import { closest as didYouMean } from '../config/did-you-mean.js';
import { BackfillRangeError } from '../dispatch/backfill.js';
import type { HttpDeps } from './deps.js';
import { apiError } from './errors.js';
import { actor } from './auth.js';
import type { AuditLog } from '../runs/audit.js';
import { triggersOf } from '../triggers/describe.js';
import { runSummary } from './views.js';
import { runsAsRoot } from '../runtime/isolation.js';

/** /api/tasks: what is configured, when it fires next, how it last ran; manual runs. */
export const taskRoutes: FastifyPluginAsync<{ deps: HttpDeps; audit: AuditLog }> = async (app, { deps, audit }) => {
  const taskOr404 = (name: string): TaskConfig => {
    const task = deps.config.tasks[name];
    if (!task) throw apiError('TASK_NOT_FOUND', { task: name, hint: didYouMean(name, Object.keys(deps.config.tasks)) });
    return task;
  };

  const describe = async (task: TaskConfig, paused: Set<string>) => {
    const last = await deps.store.last(task.name);
    const next = deps.nextFireTimes(task.name, 3);
    return {
      name: task.name,
      description: task.description,
      image: task.image,
      command: task.command,
      triggers: triggersOf(task),
      suspended: task.suspended,
      paused: paused.has(task.name),
      catchupMs: task.catchupMs,
      retries: task.retries,
      limits: { memoryBytes: task.memoryBytes, cpus: task.cpus, timeoutMs: task.timeoutMs, killGraceMs: task.killGraceMs, pids: task.pids },
      // Shown whatever they are, so an opt-out (user: root, readOnly: false) is visible to the ops person.
      isolation: { user: task.user, runsAsRoot: runsAsRoot(task.user), readOnly: task.readOnly, network: task.network },
      nextRunAt: next[0] !== undefined ? new Date(next[0]).toISOString() : null,
      nextRuns: next.map((t) => new Date(t).toISOString()),
      lastRun: last ? runSummary(last) : null,
    };
  };

  app.get('/tasks', async () => {
    const paused = await deps.pausedTasks();
    return { tasks: await Promise.all(Object.values(deps.config.tasks).map((t) => describe(t, paused))) };
  });

  app.get<{ Params: { name: string } }>('/tasks/:name', async (req) => describe(taskOr404(req.params.name), await deps.pausedTasks()));

  // Cluster-wide: every daemon reads the pause at each tick. Ticks while paused are
  // recorded as skipped; manual runs and backfills still run.
  app.post<{ Params: { name: string } }>('/tasks/:name/pause', async (req) => {
    const task = taskOr404(req.params.name);
    await deps.pause(task.name);
    await audit.record({ ...actor(req), action: 'pause', target: task.name });
    return { task: task.name, paused: true };
  });
  app.post<{ Params: { name: string } }>('/tasks/:name/resume', async (req) => {
    const task = taskOr404(req.params.name);
    await deps.resume(task.name);
    await audit.record({ ...actor(req), action: 'resume', target: task.name });
    return { task: task.name, paused: false, suspended: task.suspended };
  });

  app.post<{ Params: { name: string }; Body: { from?: unknown; to?: unknown } | undefined }>(
    '/tasks/:name/backfill',
    async (req, reply) => {
      const task = taskOr404(req.params.name);
      const from = parseTime(req.body?.from, 'from');
      const to = parseTime(req.body?.to, 'to');
      try {
        const res = await deps.backfill(task.name, from, to);
        await audit.record({ ...actor(req), action: 'backfill', target: task.name });
        return reply.code(202).send({ task: task.name, ...res });
      } catch (err) {
        if (err instanceof BackfillRangeError) throw apiError('INVALID_BODY', { detail: err.message });
        throw err;
      }
    },
  );

  // A manual run: the JSON body, if any, is the run's payload. 202 once it is durably queued.
  app.post<{ Params: { name: string } }>('/tasks/:name/runs', async (req, reply) => {
    const task = taskOr404(req.params.name);
    const size = Number(req.headers['content-length'] ?? (req.body === undefined ? 0 : Buffer.byteLength(JSON.stringify(req.body))));
    if (size > task.maxPayloadBytes) throw apiError('PAYLOAD_TOO_LARGE', { limit: task.maxPayloadBytes, task: task.name });
    const key = req.headers['idempotency-key'];
    const idempotencyKey = Array.isArray(key) ? key[0] : key;
    if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 200)) {
      throw apiError('INVALID_BODY', { detail: 'Idempotency-Key must be 1 to 200 characters' });
    }
    const { runId, created } = await deps.submitManual(task.name, req.body, idempotencyKey);
    if (created)
      await audit.record({ ...actor(req), action: 'run', target: task.name, run: runId, mark: { run: runId, field: 'requestedBy' } });
    // A repeated Idempotency-Key is not an error: it answers with the run the first request made.
    if (!created) return reply.code(200).header('location', `/api/runs/${runId}`).send({ id: runId, created: false });
    return reply.code(202).header('location', `/api/runs/${runId}`).send({ id: runId, status: 'queued' });
  });
};

function parseTime(value: unknown, name: string): number {
  const ms = typeof value === 'string' ? Date.parse(value) : typeof value === 'number' ? value : NaN;
  if (!Number.isFinite(ms)) {
    throw apiError('INVALID_BODY', {
      detail: `${name} must be a time like "2026-11-20T03:00:00Z" (or epoch milliseconds), got ${JSON.stringify(value ?? null)}`,
    });
  }
  return ms;
}
