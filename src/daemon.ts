import Docker from 'dockerode';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RunletConfig } from './config/types.js';
import { backfill } from './dispatch/backfill.js';
import { enqueue, recoverOutbox, type EnqueueDeps } from './dispatch/enqueue.js';
import { clusterIdOf, liveDaemons, newDaemonId, startHeartbeat, type Identity } from './dispatch/identity.js';
import { NodeAdmission } from './dispatch/admission.js';
import { CANCEL_CHANNEL, cancelRun, parseCancelMessage } from './dispatch/cancel.js';
import { PauseState } from './dispatch/pause.js';
import { overlapPolicy, suspendedPolicy, type QueueCounts } from './dispatch/policies.js';
import { TaskQueues } from './dispatch/queues.js';
import { runJob, type RunContext } from './dispatch/run-job.js';
import { settleLeftovers } from './dispatch/settle.js';
import { TaskWorkers } from './dispatch/workers.js';
import type { HttpDeps } from './http/deps.js';
import { listenPolicy } from './http/hosts.js';
import { buildServer } from './http/server.js';
import { ChangeFeed } from './http/live.js';
import { startEmbeddedRedis } from './lib/embedded-redis.js';
import { RunletEvents } from './runs/events.js';
import { connect, describeTarget, redisOptions, type RedisTarget } from './lib/redis.js';
import { Releasers } from './lib/releasers.js';
import { DockerRuntime } from './runtime/docker.js';
import { buildTaskImages } from './runtime/image-build.js';
import type { Runtime } from './runtime/types.js';
import { keys } from './runs/keys.js';
import { RunletMetrics } from './runs/metrics.js';
import { EndedRuns } from './runs/ended.js';
import { RunStore } from './runs/store.js';
import { noteTasks } from './runs/daily-usage.js';
import { startRetentionSweep } from './runs/retention.js';
import { mongoStreams, StuckFinder } from './ops/stuck.js';
import { loadWaitFacts, queuedEntries, WaitRecorder } from './ops/waiting.js';
import { Alerts, type AlertsOptions } from './alerts/alerts.js';
import type { RunRequest } from './runs/types.js';
import { CronTrigger } from './triggers/cron.js';
import { eventTriggers } from './triggers/events.js';
import type { TriggerDeps } from './triggers/types.js';
import { nextFireTimes } from './config/fire-times.js';
import { manualRequest, retryRequest } from './triggers/manual.js';
import { resetStream } from './triggers/mongo/cursor.js';

export interface DaemonOptions {
  readonly config: RunletConfig;
  readonly logger: Logger;
  /** Where the embedded Redis keeps its socket and append-only file. */
  readonly dataDir: string;
  readonly node: string;
  /** A shared Redis; when absent, an embedded redis-server is started in dataDir. */
  readonly redisUrl?: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** Defaults to 127.0.0.1 without a token and 0.0.0.0 with one; without a token, only a loopback address. */
  readonly host?: string;
  readonly token?: string;
  /** More Host names to answer to (RUNLET_ALLOWED_HOSTS); "*" for any, with a token only. */
  readonly allowedHosts?: readonly string[];
  readonly docker?: Docker;
  readonly runtime?: Runtime;
  /** How long stop() waits for runs in progress before leaving them to the next start. */
  readonly shutdownGraceMs?: number;
  /** Extra labels on every container this daemon starts (RUNLET_LABELS). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Queue lock of a run's job: a node silent this long has its runs delivered again (default 30 s). */
  readonly stalledMs?: number;
  /** How often runs past retention.maxAge are deleted (default 10 min). */
  readonly retentionSweepMs?: number;
  /** Alert sending and the stuck scan's period (tests shorten them). */
  readonly alerts?: AlertsOptions;
}

export interface Daemon {
  readonly url: string;
  readonly identity: Identity;
  readonly events: RunletEvents;
  readonly store: RunStore;
  readonly redis: Redis;
  readonly redisTarget: RedisTarget;
  submit(request: RunRequest): Promise<{ runId: string; created: boolean }>;
  stop(): Promise<void>;
}

const OUTBOX_EVERY_MS = 15_000;

/**
 * Starts everything in the order the data flows backwards (storage first, triggers last),
 * and stops it in reverse: triggers stop before workers, workers before connections.
 */
export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { config, logger } = opts;
  // First, before anything is started: a daemon that would be open to strangers doesn't start.
  const listen = listenPolicy(opts);
  const releasers = new Releasers(logger);
  try {
    // --- storage -----------------------------------------------------------------------
    let redisTarget: RedisTarget;
    if (opts.redisUrl) {
      redisTarget = { url: opts.redisUrl };
    } else {
      const embedded = await startEmbeddedRedis(opts.dataDir);
      releasers.add('embedded redis', () => embedded.stop());
      redisTarget = { path: embedded.path };
      logger.info({ socket: embedded.path, reused: !embedded.owned }, 'embedded redis-server ready');
    }
    const redis = connect(redisTarget, 'runlet');
    releasers.add('redis', async () => void redis.disconnect());
    await redis.ping();
    const store = new RunStore(redis);
    const identity: Identity = { node: opts.node, clusterId: await clusterIdOf(redis), daemonId: newDaemonId(opts.node) };
    const heartbeat = startHeartbeat(redis, identity, { version: process.env.npm_package_version });
    releasers.add('heartbeat', () => heartbeat.stop());

    // --- runtime -----------------------------------------------------------------------
    const docker = opts.docker ?? new Docker();
    await docker.ping().catch((err) => {
      throw new Error(`no Docker engine answers (${(err as Error).message}); start dockerd or set DOCKER_HOST`);
    });
    const runtime = opts.runtime ?? new DockerRuntime({ docker, logger, labels: opts.labels });
    await buildTaskImages(docker, config, logger);

    // --- dispatch ----------------------------------------------------------------------
    const events = new RunletEvents();
    const connection = redisOptions(redisTarget);
    const queues = new TaskQueues(connection);
    releasers.add('queues', () => queues.close());
    const pauses = new PauseState(redis);
    // The task limit is cluster-wide: BullMQ's global concurrency, set by every daemon
    // from the same config (idempotent).
    for (const task of Object.values(config.tasks)) {
      if (task.overlap === 'allow') await queues.get(task.name).removeGlobalConcurrency();
      else await queues.get(task.name).setGlobalConcurrency(task.concurrency);
    }
    const counts = async (task: string): Promise<QueueCounts> => {
      const c = await queues.get(task).getJobCounts('active', 'waiting', 'prioritized', 'delayed', 'paused');
      return { active: c.active ?? 0, waiting: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0) + (c.paused ?? 0) };
    };
    const replaceOldest = async (task: string): Promise<void> => {
      const running = await store.list({ task, status: ['starting', 'running'], limit: 1000 });
      const oldest = running[running.length - 1];
      if (oldest) await cancelRun(redis, store, oldest.id, 'replaced by a newer run (overlap: replace)');
    };
    // Gauges of queue state are read from the queues at scrape time: cluster-wide.
    const metrics = new RunletMetrics(events, { config, queueState: counts });
    const policies = [suspendedPolicy(pauses), overlapPolicy(counts, replaceOldest)];
    const enqueueDeps: EnqueueDeps = { config, policies, store, queues, events, logger };
    const ctx: RunContext = { config, store, runtime, redis, identity, events, logger, queues, active: new Map() };

    await noteTasks(redis, Object.values(config.tasks)).catch((err) => logger.warn({ err }, 'could not note the tasks for the usage report'));
    if (config.retention.maxAgeMs !== undefined) releasers.add('retention sweep', startRetentionSweep(store, config.retention.maxAgeMs, logger, opts.retentionSweepMs));
    const settled = await settleLeftovers(ctx);
    if (settled.adopted + settled.settled + settled.removed > 0) logger.info(settled, 'settled containers left by a previous process');
    await recoverOutbox(enqueueDeps);
    const outboxTimer = setInterval(() => void recoverOutbox(enqueueDeps).catch((err) => logger.error({ err }, 'outbox recovery failed')), OUTBOX_EVERY_MS);
    outboxTimer.unref();
    releasers.add('outbox timer', async () => clearInterval(outboxTimer));

    // Cancel requests reach whichever daemon runs the container.
    // Subscribed once ready, and again on every ready: a SUBSCRIBE sent while a fresh
    // connection is still connecting was seen lost (see http/live.ts); twice is harmless.
    const subscriber = redis.duplicate();
    subscriber.on('error', () => undefined);
    subscriber.on('ready', () => void subscriber.subscribe(CANCEL_CHANNEL).catch(() => undefined));
    if (subscriber.status !== 'ready') await new Promise((resolve) => subscriber.once('ready', resolve));
    await subscriber.subscribe(CANCEL_CHANNEL);
    subscriber.on('message', (_ch, message: string) => {
      const { runId, reason } = parseCancelMessage(message);
      ctx.active.get(runId)?.cancel.abort(reason);
    });
    releasers.add('cancel subscriber', async () => void subscriber.disconnect());

    const admission = new NodeAdmission(config);
    const waits = new WaitRecorder(redis, store, identity, logger);
    releasers.add('wait reasons', () => waits.clear());
    const workers = new TaskWorkers(connection, config, admission, (runId) => runJob(ctx, runId), logger, opts.stalledMs);
    workers.events = events;
    workers.waits = waits;
    releasers.add('workers', async () => {
      await workers.stopTaking();
      const grace = opts.shutdownGraceMs ?? 10_000;
      if (ctx.active.size > 0) logger.info({ running: ctx.active.size, graceMs: grace }, 'waiting for runs in progress; any still running after the grace are adopted by the next start');
      const left = await workers.drain(grace);
      if (left > 0) logger.warn({ left }, 'runs still in progress are left to the next start');
      await workers.close(true);
    });
    await workers.start(Object.values(config.tasks));

    const submit = (request: RunRequest, o: { cronMarker?: boolean; skipReason?: string } = {}) => enqueue(enqueueDeps, request, o);
    const ended = new EndedRuns(redis, store, logger);
    ended.start();
    releasers.add('ended runs reader', () => ended.stop());
    const stuck = new StuckFinder({
      config,
      inProgress: () => store.list({ status: ['queued', 'starting', 'running'], limit: 1000 }),
      facts: (now) => loadWaitFacts(redis, store, config, now),
      streams: mongoStreams(redis, config),
    });
    if (Alerts.wanted(config)) {
      const alerts = new Alerts({ config, redis, store, identity, events, logger, findStuck: () => stuck.find() }, opts.alerts);
      await alerts.start();
      releasers.add('alerts', () => alerts.stop());
    }

    // --- http ----------------------------------------------------------------------------
    // One subscriber connection for all of this daemon's live views (released after the server).
    const changes = new ChangeFeed(redis.duplicate(), logger.child({ component: 'live' }));
    releasers.add('change feed', () => changes.stop());
    const httpDeps: HttpDeps = {
      config,
      store,
      token: opts.token,
      hosts: listen.hosts,
      metrics: metrics.registry,
      events,
      redis,
      ended,
      changes,
      submit: (request) => submit(request),
      submitManual: (task, payload, idempotencyKey) => submit(manualRequest(task, payload, idempotencyKey)),
      cancelRun: (runId) => cancelRun(redis, store, runId),
      retryRun: (run) => submit(retryRequest(run)),
      pause: (task) => pauses.pause(task),
      resume: (task) => pauses.resume(task),
      pausedTasks: () => pauses.all(),
      backfill: (task, fromMs, toMs) => backfill(submit, config.tasks[task], fromMs, toMs, Date.now()),
      nextFireTimes: (task, n) => (config.tasks[task] ? nextFireTimes(config.tasks[task], n) : []),
      health: async () => ({
        redis: await redis.ping().then(() => ({ ok: true }), (e) => ({ ok: false, detail: String(e.message ?? e) })),
        docker: await docker.ping().then(() => ({ ok: true }), (e) => ({ ok: false, detail: String(e.message ?? e) })),
      }),
      stuck: (now) => stuck.find(now),
      resetStream: (task) => resetStream(redis, task),
      status: async () => {
        // Each list read once, in parallel; the wait explanations reuse them.
        const [live, running, queued] = await Promise.all([
          liveDaemons(redis),
          store.list({ status: ['starting', 'running'], limit: 1000 }),
          store.list({ status: ['queued'], limit: 200 }),
        ]);
        const facts = await loadWaitFacts(redis, store, config, Date.now(), { running, live });
        return {
          node: identity.node,
          daemons: live,
          running: running.slice(0, 200).map((r) => ({ id: r.id, task: r.task, status: r.status, node: r.node, startedAt: r.startedAt })),
          queued: queuedEntries(queued, facts),
          next: Object.values(config.tasks)
            .flatMap((t) => nextFireTimes(t, 1).map((at) => ({ task: t.name, at })))
            .sort((a, b) => a.at - b.at),
        };
      },
    };
    const app = buildServer(httpDeps, logger);
    releasers.add('http server', () => app.close());
    const { host } = listen;
    // listenPolicy allowed no token on a loopback address only; local users are still in.
    if (!opts.token) logger.warn({ host }, 'RUNLET_TOKEN is not set: the ops API is open to every user and process on this machine (pages on other sites are refused by the Host and Origin checks)');
    if (listen.hosts.any) logger.warn('RUNLET_ALLOWED_HOSTS=*: any Host name is accepted; the token is what keeps the API closed');
    await app.listen({ port: opts.port, host });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : opts.port;
    const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;

    // --- triggers (last: nothing fires before the rest can take it) ----------------------
    const crons = Object.values(config.tasks)
      .filter((t) => t.schedule)
      .map((t) => new CronTrigger(t, submit, logger));
    const lastTicks = crons.length > 0 ? await redis.mget(crons.map((c) => keys.cronLast(c.taskName))) : [];
    for (const [i, c] of crons.entries()) await c.start(lastTicks[i] ? Number(lastTicks[i]) : undefined);
    releasers.add('cron triggers', async () => void (await Promise.allSettled(crons.map((c) => c.stop()))));
    const triggerDeps: TriggerDeps = { config, submit: (request) => submit(request), ended, store, redis, redisTarget, identity, logger, stalledMs: opts.stalledMs };
    const triggers = eventTriggers(triggerDeps);
    // Each stops on its own; one that fails to start is logged and reported, never fatal
    // to the others (a change stream whose server is down must not stop the webhooks).
    releasers.add('event triggers', async () => void (await Promise.allSettled(triggers.map((t) => t.stop()))));
    for (const t of triggers) await t.start().catch((err) => logger.error({ err, trigger: t.name }, 'trigger failed to start'));

    logger.info({ url, node: identity.node, redis: describeTarget(redisTarget), tasks: Object.keys(config.tasks).length, scheduled: crons.length, triggers: triggers.map((t) => t.name) }, 'runlet is running');
    events.emit('daemon:ready', { url });
    return {
      url,
      identity,
      events,
      store,
      redis,
      redisTarget,
      submit: (request) => submit(request),
      stop: () => releasers.releaseAll(),
    };
  } catch (err) {
    await releasers.releaseAll();
    throw err;
  }
}
