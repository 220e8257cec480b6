import type { FastifyPluginAsync } from 'fastify';
import { TRIGGER_KINDS, type RunStatus, type TriggerKind } from '../runs/types.js';
import { isTerminal, TERMINAL_STATUSES } from '../runs/types.js';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { followLogs, LogSubscriptions } from '../runs/log-stream.js';
import type { HttpDeps } from './deps.js';
import { apiError } from './errors.js';
import { actor, atLeast } from './auth.js';
import type { AuditLog } from '../runs/audit.js';
import { runDetail, runSummary } from './views.js';

const STATUSES: readonly RunStatus[] = ['queued', 'starting', 'running', ...TERMINAL_STATUSES];

/** /api/runs: history, one run's record, its logs, cancelling it and running it again. */
export const runRoutes: FastifyPluginAsync<{ deps: HttpDeps; audit: AuditLog }> = async (app, { deps, audit }) => {
  app.get<{ Querystring: { task?: string; status?: string; trigger?: string; dead?: string; limit?: string; before?: string } }>(
    '/runs',
    async (req) => {
      const { task, status, trigger, dead, limit, before } = req.query;
      const statuses = status ? status.split(',').map((s) => s.trim()) : [];
      const badStatus = statuses.find((s) => !STATUSES.includes(s as RunStatus));
      if (badStatus) throw apiError('INVALID_QUERY', { detail: `unknown status "${badStatus}"; one of: ${STATUSES.join(', ')}` });
      if (trigger && !TRIGGER_KINDS.includes(trigger as TriggerKind))
        throw apiError('INVALID_QUERY', { detail: `unknown trigger "${trigger}"; one of: ${TRIGGER_KINDS.join(', ')}` });
      if (dead !== undefined && dead !== 'true' && dead !== 'false')
        throw apiError('INVALID_QUERY', { detail: `dead must be true or false, got "${dead}"` });
      const n = limit === undefined ? 50 : Number(limit);
      if (!Number.isInteger(n) || n < 1 || n > 1000)
        throw apiError('INVALID_QUERY', { detail: `limit must be a whole number from 1 to 1000, got "${limit}"` });
      const runs = await deps.store.list({
        task,
        status: statuses as RunStatus[],
        trigger: trigger as TriggerKind | undefined,
        dead: dead === undefined ? undefined : dead === 'true',
        limit: n,
        before,
      });
      return { runs: runs.map(runSummary) };
    },
  );

  app.get<{ Params: { id: string } }>('/runs/:id', async (req) => {
    const run = await deps.store.get(req.params.id, { withLogs: true, withPayload: true });
    if (!run) throw apiError('RUN_NOT_FOUND', { id: req.params.id });
    return runDetail(run, atLeast(req.principal.role, 'operator'));
  });

  // Live followers of this server; one subscriber connection for all of them.
  const subscriptions = new LogSubscriptions(deps.redis);
  const follows = new Set<AbortController>();
  const followSockets = new Set<Socket>();
  // A follow lasts as long as its run: end them, or closing the server would wait for runs.
  // Their sockets go too: one whose client left unseen (see below) would hold the close.
  app.addHook('preClose', async () => {
    for (const f of follows) f.abort();
    for (const s of followSockets) s.destroy();
  });
  app.addHook('onClose', async () => subscriptions.close());

  // The kept tail (last 64 KiB) as plain text; for a running run, what it printed so far.
  // With ?follow=1: the tail, then the output as it is written (from whichever daemon runs
  // the container), until the run ends.
  app.get<{ Params: { id: string }; Querystring: { follow?: string } }>('/runs/:id/logs', async (req, reply) => {
    const follow = req.query.follow !== undefined && req.query.follow !== '0' && req.query.follow !== 'false';
    const run = await deps.store.get(req.params.id, { withLogs: !follow });
    if (!run) throw apiError('RUN_NOT_FOUND', { id: req.params.id });
    reply.type('text/plain; charset=utf-8').header('x-runlet-run-status', run.status);
    if (!follow) return reply.send(run.logTail ?? '');
    const body = new PassThrough();
    const stop = new AbortController();
    follows.add(stop);
    // Node stops reading a connection while its response is pending, so a client that
    // leaves may go unseen until we write; when it is seen, stop and tear the response down.
    let clientGone = false;
    const socket = req.raw.socket;
    followSockets.add(socket);
    socket.once('close', () => followSockets.delete(socket));
    // One response per connection: when the run ends, the connection ends with it.
    reply.header('connection', 'close');
    const gone = () => {
      clientGone = true;
      stop.abort();
    };
    socket.once('end', gone);
    reply.raw.once('close', gone);
    followLogs({ store: deps.store, ended: deps.ended, subscriptions, logger: req.log }, run.id, (bytes) => body.write(bytes), stop.signal)
      .catch((err) => req.log.warn({ err, runId: run.id }, 'log follow failed'))
      .finally(() => {
        follows.delete(stop);
        socket.off('end', gone);
        reply.raw.off('close', gone);
        if (clientGone) {
          body.destroy();
          reply.raw.destroy();
        } else body.end();
      });
    return reply.send(body);
  });

  app.post<{ Params: { id: string } }>('/runs/:id/cancel', async (req, reply) => {
    const run = await deps.store.get(req.params.id);
    if (!run) throw apiError('RUN_NOT_FOUND', { id: req.params.id });
    const res = await deps.cancelRun(run.id);
    if (!res.accepted) throw apiError('RUN_FINISHED', { id: run.id, status: res.status });
    await audit.record({ ...actor(req), action: 'cancel', target: run.task, run: run.id, mark: { run: run.id, field: 'cancelledBy' } });
    return reply.code(202).send({ id: run.id, status: res.status });
  });

  // Runs an ended run again (a dead one, typically) as a new manual run with its payload.
  app.post<{ Params: { id: string } }>('/runs/:id/retry', async (req, reply) => {
    const run = await deps.store.get(req.params.id, { withPayload: true });
    if (!run) throw apiError('RUN_NOT_FOUND', { id: req.params.id });
    if (!isTerminal(run.status)) throw apiError('RUN_NOT_ENDED', { id: run.id, status: run.status });
    if (!deps.config.tasks[run.task]) throw apiError('TASK_NOT_FOUND', { task: run.task });
    const { runId } = await deps.retryRun(run);
    await audit.record({ ...actor(req), action: 'retry', target: run.task, run: runId, mark: { run: runId, field: 'requestedBy' } });
    return reply.code(202).header('location', `/api/runs/${runId}`).send({ id: runId, status: 'queued', retryOf: run.id });
  });
};
