import type { FastifyPluginAsync } from 'fastify';
import { TRIGGER_KINDS, type RunStatus, type TriggerKind } from '../runs/types.js';
import { isTerminal, TERMINAL_STATUSES } from '../runs/types.js';
import type { HttpDeps } from './deps.js';
import { apiError } from './errors.js';
import { runDetail, runSummary } from './views.js';

const STATUSES: readonly RunStatus[] = ['queued', 'starting', 'running', ...TERMINAL_STATUSES];

/** /api/runs: history, one run's record, its logs, cancelling it and running it again. */
export const runRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.get<{ Querystring: { task?: string; status?: string; trigger?: string; dead?: string; limit?: string; before?: string } }>('/runs', async (req) => {
    const { task, status, trigger, dead, limit, before } = req.query;
    const statuses = status ? status.split(',').map((s) => s.trim()) : [];
    const badStatus = statuses.find((s) => !STATUSES.includes(s as RunStatus));
    if (badStatus) throw apiError('INVALID_QUERY', { detail: `unknown status "${badStatus}"; one of: ${STATUSES.join(', ')}` });
    if (trigger && !TRIGGER_KINDS.includes(trigger as TriggerKind)) throw apiError('INVALID_QUERY', { detail: `unknown trigger "${trigger}"; one of: ${TRIGGER_KINDS.join(', ')}` });
    if (dead !== undefined && dead !== 'true' && dead !== 'false') throw apiError('INVALID_QUERY', { detail: `dead must be true or false, got "${dead}"` });
    const n = limit === undefined ? 50 : Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw apiError('INVALID_QUERY', { detail: `limit must be a whole number from 1 to 1000, got "${limit}"` });
    const runs = await deps.store.list({ task, status: statuses as RunStatus[], trigger: trigger as TriggerKind | undefined, dead: dead === undefined ? undefined : dead === 'true', limit: n, before });
    return { runs: runs.map(runSummary) };
  });

  app.get<{ Params: { id: string } }>('/runs/:id', async (req) => {
    const run = await deps.store.get(req.params.id, { withLogs: true });
    if (!run) throw apiError('RUN_NOT_FOUND', { id: req.params.id });
    return runDetail(run);
  });

  // The kept tail (last 64 KiB) as plain text; for a running run, what it printed so far.
  app.get<{ Params: { id: string } }>('/runs/:id/logs', async (req, reply) => {
    const run = await deps.store.get(req.params.id, { withLogs: true });
    if (!run) throw apiError('RUN_NOT_FOUND', { id: req.params.id });
    return reply.type('text/plain; charset=utf-8').header('x-runlet-run-status', run.status).send(run.logTail ?? '');
  });

  app.post<{ Params: { id: string } }>('/runs/:id/cancel', async (req, reply) => {
    const run = await deps.store.get(req.params.id);
    if (!run) throw apiError('RUN_NOT_FOUND', { id: req.params.id });
    const res = await deps.cancelRun(run.id);
    if (!res.accepted) throw apiError('RUN_FINISHED', { id: run.id, status: res.status });
    return reply.code(202).send({ id: run.id, status: res.status });
  });

  // Runs an ended run again (a dead one, typically) as a new manual run with its payload.
  app.post<{ Params: { id: string } }>('/runs/:id/retry', async (req, reply) => {
    const run = await deps.store.get(req.params.id);
    if (!run) throw apiError('RUN_NOT_FOUND', { id: req.params.id });
    if (!isTerminal(run.status)) throw apiError('RUN_NOT_ENDED', { id: run.id, status: run.status });
    if (!deps.config.tasks[run.task]) throw apiError('TASK_NOT_FOUND', { task: run.task });
    const { runId } = await deps.retryRun(run);
    return reply.code(202).header('location', `/api/runs/${runId}`).send({ id: runId, status: 'queued', retryOf: run.id });
  });
};
