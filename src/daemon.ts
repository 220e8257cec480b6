import Docker from 'dockerode';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RunletConfig } from './config/types.js';
import { nextFireTimes } from './config/fire-times.js';
import { NodeAdmission } from './dispatch/admission.js';
import { backfill } from './dispatch/backfill.js';
import { cancelRun, subscribeToCancels } from './dispatch/cancel.js';
import { enqueue, recoverOutbox, type EnqueueDeps, type Enqueued } from './dispatch/enqueue.js';
import { clusterIdFor, newDaemonId, rememberClusterId, rememberedClusterId, startHeartbeat, type Identity } from './dispatch/identity.js';
import { recordRunsInProgress } from './dispatch/orphans.js';
import { PauseState } from './dispatch/pause.js';
import { overlapPolicy, suspendedPolicy } from './dispatch/policies.js';
import { TaskQueues } from './dispatch/queues.js';
import { runJob, type RunContext } from './dispatch/run-job.js';
import { settleLeftovers } from './dispatch/settle.js';
import { TaskWorkers } from './dispatch/workers.js';
import { Alerts, type AlertsOptions } from './alerts/alerts.js';
import type { HttpDeps } from './http/deps.js';
import { listenPolicy } from './http/hosts.js';
import { ChangeFeed } from './http/live.js';
import { buildServer } from './http/server.js';
import { startEmbeddedRedis } from './lib/embedded-redis.js';
import { assertNoEviction } from './lib/eviction.js';
import { connect, describeTarget, isSentinel, redisOptions, type RedisTarget } from './lib/redis.js';
import { ReplicaAcks } from './lib/replicas.js';
import { Releasers } from './lib/releasers.js';
import { clusterStatus } from './ops/status.js';
import { mongoStreams, StuckFinder } from './ops/stuck.js';
import { loadWaitFacts, WaitRecorder } from './ops/waiting.js';
import { DockerRuntime } from './runtime/docker.js';
import { buildTaskImages } from './runtime/image-build.js';
import type { Runtime } from './runtime/types.js';
import { noteTasks } from './runs/daily-usage.js';
import { EndedRuns } from './runs/ended.js';
import { RedisEpoch } from './runs/epoch.js';
import { keys } from './runs/keys.js';
import { RunletEvents } from './runs/events.js';
import { RunletMetrics } from './runs/metrics.js';
import { startRetentionSweep } from './runs/retention.js';
import { RunStore } from './runs/store.js';
import type { RunRequest } from './runs/types.js';
import { allTriggers } from './triggers/events.js';
import { manualRequest, retryRequest } from './triggers/manual.js';
import { resetStream } from './triggers/mongo/cursor.js';
import type { TriggerDeps } from './triggers/types.js';

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

type Submit = (request: RunRequest, opts?: { cronMarker?: boolean; skipReason?: string }) => Promise<Enqueued>;

/**
 * Starts everything in the order the data flows backwards (storage first, triggers last),
 * and stops it in reverse: triggers stop before workers, workers before connections. Each
 * step registers what it must release as it acquires it, so a failure part-way releases
 * exactly what was started.
 */
export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  // First, before anything is started: a daemon that would be open to strangers doesn't start.
  const listen = listenPolicy(opts);
  const releasers = new Releasers(opts.logger);
  try {
    const storage = await startStorage(opts, releasers);
    const docker = await startRuntime(opts);
    const dispatch = await startDispatch(opts, storage, docker, releasers);
    await startAlerts(opts, storage, dispatch, releasers);
    const url = await startHttp(opts, listen, storage, dispatch, docker.docker, releasers);
    const triggers = await startTriggers(opts, storage, dispatch, releasers);

    const { identity, redis, redisTarget, store } = storage;
    opts.logger.info(
      {
        url,
        node: identity.node,
        redis: describeTarget(redisTarget),
        tasks: Object.keys(opts.config.tasks).length,
        triggers: triggers.map((t) => t.name),
      },
      'runlet is running',
    );
    dispatch.events.emit('daemon:ready', { url });
    return {
      url,
      identity,
      events: dispatch.events,
      store,
      redis,
      redisTarget,
      submit: (request) => dispatch.submit(request),
      stop: () => releasers.releaseAll(),
    };
  } catch (err) {
    await releasers.releaseAll();
    throw err;
  }
}

interface Storage {
  readonly redisTarget: RedisTarget;
  readonly redis: Redis;
  readonly store: RunStore;
  readonly identity: Identity;
  readonly epoch: RedisEpoch;
}

/** runlet's Redis (its own embedded one unless REDIS_URL), the run store, and this daemon's identity and heartbeat. */
async function startStorage(opts: DaemonOptions, releasers: Releasers): Promise<Storage> {
  let redisTarget: RedisTarget;
  if (opts.redisUrl) {
    redisTarget = { url: opts.redisUrl };
  } else {
    const embedded = await startEmbeddedRedis(opts.dataDir);
    releasers.add('embedded redis', () => embedded.stop());
    redisTarget = { path: embedded.path };
    opts.logger.info({ socket: embedded.path, reused: !embedded.owned }, 'embedded redis-server ready');
  }
  const redis = connect(redisTarget, 'runlet');
  releasers.add('redis', async () => void redis.disconnect());
  await redis.ping();
  // Before the first write: a Redis that may evict run records and locks is refused, by name.
  await assertNoEviction(redis, describeTarget(redisTarget));
  const cluster = await clusterIdFor(redis, rememberedClusterId(opts.dataDir, describeTarget(redisTarget)));
  if (cluster.restored)
    opts.logger.warn(
      { clusterId: cluster.id },
      'redis had no cluster id (emptied while no daemon ran?): put back the one this node last ran under, which its containers carry',
    );
  rememberClusterId(opts.dataDir, describeTarget(redisTarget), cluster.id);
  const identity: Identity = { node: opts.node, clusterId: cluster.id, daemonId: newDaemonId(opts.node) };
  const heartbeat = startHeartbeat(redis, identity, { version: process.env.npm_package_version });
  releasers.add('heartbeat', () => heartbeat.stop());
  // Started here, checked from now on; what later steps set once, they register with it.
  const epoch = new RedisEpoch(redis, identity.clusterId, opts.logger);
  await epoch.mark();
  releasers.add('redis epoch check', epoch.start());
  // Behind Sentinel, a failover promotes a replica that may lack the master's latest writes:
  // the writes a caller acts on next wait for a replica's ack (runs/store.ts, lib/replicas.ts).
  let replicas: ReplicaAcks | undefined;
  if (isSentinel(redisTarget)) {
    const acks = connect(redisTarget, 'runlet-replica-acks');
    releasers.add('replica acks', async () => void acks.disconnect());
    replicas = new ReplicaAcks(acks, keys.replicaAck(), opts.logger);
  }
  return { redisTarget, redis, store: new RunStore(redis, { replicas }), identity, epoch };
}

/** The engine must answer before anything is taken; the tasks' `build:` images are built now. */
async function startRuntime(opts: DaemonOptions): Promise<{ docker: Docker; runtime: Runtime }> {
  const docker = opts.docker ?? new Docker();
  await docker.ping().catch((err) => {
    throw new Error(`no Docker engine answers (${(err as Error).message}); start dockerd or set DOCKER_HOST`);
  });
  const runtime = opts.runtime ?? new DockerRuntime({ docker, logger: opts.logger, labels: opts.labels });
  await buildTaskImages(docker, opts.config, opts.logger);
  return { docker, runtime };
}

interface Dispatch {
  readonly events: RunletEvents;
  readonly queues: TaskQueues;
  readonly pauses: PauseState;
  readonly metrics: RunletMetrics;
  readonly ended: EndedRuns;
  readonly stuck: StuckFinder;
  readonly submit: Submit;
}

/**
 * Queues with their cluster-wide limits, the outbox, leftovers of a previous process
 * settled, cancels heard, then this node's workers: from here on runs are taken.
 */
async function startDispatch(opts: DaemonOptions, storage: Storage, engine: { runtime: Runtime }, releasers: Releasers): Promise<Dispatch> {
  const { config, logger } = opts;
  const { redis, store, identity, redisTarget } = storage;
  const events = new RunletEvents();
  const connection = redisOptions(redisTarget);
  const queues = new TaskQueues(connection);
  releasers.add('queues', () => queues.close());
  // Pauses Redis loses (emptied, failed over) are put back from what the daemons saw.
  const pauses = new PauseState(redis, logger);
  releasers.add('pause sync', pauses.start());
  storage.epoch.onEmpty('paused tasks', () => pauses.all());
  await queues.applyConcurrency(Object.values(config.tasks));
  storage.epoch.onEmpty('task concurrency limits', () => queues.applyConcurrency(Object.values(config.tasks)));
  const counts = (task: string) => queues.counts(task);
  const replaceOldest = async (task: string): Promise<void> => {
    const running = await store.list({ task, status: ['starting', 'running'], limit: 1000 });
    const oldest = running[running.length - 1];
    if (oldest) await cancelRun(redis, store, oldest.id, 'replaced by a newer run (overlap: replace)');
  };
  // Gauges of queue state are read from the queues at scrape time: cluster-wide.
  const metrics = new RunletMetrics(events, { config, queueState: counts });
  const enqueueDeps: EnqueueDeps = {
    config,
    policies: [suspendedPolicy(pauses), overlapPolicy(counts, replaceOldest)],
    store,
    queues,
    events,
    logger,
  };
  const ctx: RunContext = { config, store, runtime: engine.runtime, redis, identity, events, logger, queues, active: new Map() };
  // Runs this daemon runs whose records an emptied Redis lost show again, from their containers' labels.
  storage.epoch.onEmpty('runs in progress', () => recordRunsInProgress(ctx));

  await noteTasks(redis, Object.values(config.tasks)).catch((err) => logger.warn({ err }, 'could not note the tasks for the usage report'));
  if (config.retention.maxAgeMs !== undefined)
    releasers.add('retention sweep', startRetentionSweep(store, config.retention.maxAgeMs, logger, opts.retentionSweepMs));
  const waits = new WaitRecorder(redis, store, identity, logger);
  releasers.add('wait reasons', () => waits.clear());
  // Made before settling, started after: the containers it adopts take their room first.
  const workers = new TaskWorkers(connection, config, new NodeAdmission(config), (runId) => runJob(ctx, runId), logger, opts.stalledMs, {
    events,
    waits,
  });
  const settled = await settleLeftovers(ctx, workers);
  if (settled.adopted + settled.settled + settled.removed > 0) logger.info(settled, 'settled containers left by a previous process');
  await recoverOutbox(enqueueDeps);
  const outboxTimer = setInterval(
    () => void recoverOutbox(enqueueDeps).catch((err) => logger.error({ err }, 'outbox recovery failed')),
    OUTBOX_EVERY_MS,
  );
  outboxTimer.unref();
  releasers.add('outbox timer', async () => clearInterval(outboxTimer));
  // Cancel requests reach whichever daemon runs the container.
  releasers.add('cancel subscriber', await subscribeToCancels(redis, (runId, reason) => ctx.active.get(runId)?.cancel.abort(reason)));

  releasers.add('workers', async () => {
    await workers.stopTaking();
    const grace = opts.shutdownGraceMs ?? 10_000;
    if (ctx.active.size > 0)
      logger.info(
        { running: ctx.active.size, graceMs: grace },
        'waiting for runs in progress; any still running after the grace are adopted by the next start',
      );
    const left = await workers.drain(grace);
    if (left > 0) logger.warn({ left }, 'runs still in progress are left to the next start');
    await workers.close(true);
  });
  await workers.start(Object.values(config.tasks));

  const ended = new EndedRuns(redis, store, logger);
  ended.start();
  releasers.add('ended runs reader', () => ended.stop());
  const stuck = new StuckFinder({
    config,
    inProgress: () => store.list({ status: ['queued', 'starting', 'running'], limit: 1000 }),
    facts: (now) => loadWaitFacts(redis, store, config, now),
    streams: mongoStreams(redis, config),
  });
  return { events, queues, pauses, metrics, ended, stuck, submit: (request, o = {}) => enqueue(enqueueDeps, request, o) };
}

async function startAlerts(opts: DaemonOptions, storage: Storage, dispatch: Dispatch, releasers: Releasers): Promise<void> {
  if (!Alerts.wanted(opts.config)) return;
  const { config, logger } = opts;
  const alerts = new Alerts(
    {
      config,
      redis: storage.redis,
      store: storage.store,
      identity: storage.identity,
      events: dispatch.events,
      logger,
      epoch: storage.epoch,
      findStuck: () => dispatch.stuck.find(),
    },
    opts.alerts,
  );
  await alerts.start();
  releasers.add('alerts', () => alerts.stop());
}

/** The ops API, hooks, live views and dashboard; returns the URL it answers on. */
async function startHttp(
  opts: DaemonOptions,
  listen: ReturnType<typeof listenPolicy>,
  storage: Storage,
  dispatch: Dispatch,
  docker: Docker,
  releasers: Releasers,
): Promise<string> {
  const { config, logger } = opts;
  const { redis, store, identity } = storage;
  const { submit, pauses } = dispatch;
  // One subscriber connection for all of this daemon's live views (released after the server).
  const changes = new ChangeFeed(redis.duplicate(), logger.child({ component: 'live' }));
  releasers.add('change feed', () => changes.stop());
  const ping = (p: Promise<unknown>) =>
    p.then(
      () => ({ ok: true }),
      (e) => ({ ok: false, detail: String(e.message ?? e) }),
    );
  const httpDeps: HttpDeps = {
    config,
    store,
    token: opts.token,
    hosts: listen.hosts,
    metrics: dispatch.metrics.registry,
    events: dispatch.events,
    redis,
    ended: dispatch.ended,
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
    health: async () => ({ redis: await ping(redis.ping()), docker: await ping(docker.ping()) }),
    stuck: (now) => dispatch.stuck.find(now),
    resetStream: (task) => resetStream(redis, task),
    status: () => clusterStatus({ redis, store, config, identity }),
  };
  const app = buildServer(httpDeps, logger);
  releasers.add('http server', () => app.close());
  const { host } = listen;
  // listenPolicy allowed no token on a loopback address only; local users are still in.
  if (!opts.token)
    logger.warn(
      { host },
      'RUNLET_TOKEN is not set: the ops API is open to every user and process on this machine (pages on other sites are refused by the Host and Origin checks)',
    );
  if (listen.hosts.any) logger.warn('RUNLET_ALLOWED_HOSTS=*: any Host name is accepted; the token is what keeps the API closed');
  await app.listen({ port: opts.port, host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
}

/**
 * Last: nothing fires before the rest can take it. Each trigger stops on its own; one that
 * fails to start is logged, never fatal to the others (a change stream whose server is
 * down must not stop the schedules).
 */
async function startTriggers(opts: DaemonOptions, storage: Storage, dispatch: Dispatch, releasers: Releasers) {
  const { config, logger } = opts;
  const { redis, store, identity, redisTarget } = storage;
  const deps: TriggerDeps = {
    config,
    submit: dispatch.submit,
    ended: dispatch.ended,
    store,
    redis,
    redisTarget,
    identity,
    logger,
    stalledMs: opts.stalledMs,
    epoch: storage.epoch,
  };
  const triggers = await allTriggers(deps);
  releasers.add('triggers', async () => void (await Promise.allSettled(triggers.map((t) => t.stop()))));
  for (const t of triggers) await t.start().catch((err) => logger.error({ err, trigger: t.name }, 'trigger failed to start'));
  return triggers;
}
