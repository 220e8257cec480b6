import Docker from 'dockerode';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ConfigChanges } from './config/diff.js';
import { LiveConfig } from './config/live.js';
import { loadConfig } from './config/load.js';
import type { RunletConfig } from './config/types.js';
import { nextFireTimes } from './config/fire-times.js';
import { NodeAdmission } from './dispatch/admission.js';
import { backfill } from './dispatch/backfill.js';
import { cancelRun, subscribeToCancels } from './dispatch/cancel.js';
import { addAdmitted, enqueue, recoverOutbox, type EnqueueDeps, type Enqueued } from './dispatch/enqueue.js';
import { watchClaims } from './dispatch/claims.js';
import type { RunContext } from './dispatch/context.js';
import {
  clusterIdFor,
  DEFAULT_LEASE_MS,
  newDaemonId,
  rememberClusterId,
  rememberedClusterId,
  startHeartbeat,
  type Heartbeat,
  type Identity,
} from './dispatch/identity.js';
import { recordRunsInProgress } from './dispatch/orphans.js';
import { PauseState } from './dispatch/pause.js';
import { overlapPolicy, suspendedPolicy } from './dispatch/policies.js';
import { PoolQueues } from './dispatch/queues.js';
import { TaskGate } from './dispatch/gate.js';
import { startReconciler } from './dispatch/reconcile.js';
import { runJob } from './dispatch/run-job.js';
import { settleLeftovers } from './dispatch/settle.js';
import { PoolWorkers } from './dispatch/workers.js';
import { ReusePools, type ReuseCounts } from './dispatch/reuse-pools.js';
import { settleWarm } from './dispatch/settle-warm.js';
import { WarmPool } from './dispatch/warm-pool.js';
import { hostAddress } from './runtime/host-address.js';
import { LambdaRuntimeApi } from './runtime/lambda-api.js';
import { Alerts, alertsGroup, type AlertsOptions } from './alerts/alerts.js';
import { Reloader } from './daemon/reload.js';
import type { HttpDeps } from './http/deps.js';
import { listenPolicy } from './http/hosts.js';
import { ApiTokens } from './http/auth.js';
import { loadTokens } from './config/tokens.js';
import { ChangeFeed } from './http/live.js';
import { buildServer, fixedAtStart } from './http/server.js';
import { functionsFixedAtStart, hasFunctions, listenFunctions } from './http/functions/server.js';
import { startEmbeddedRedis } from './lib/embedded-redis.js';
import { assertNoEviction } from './lib/eviction.js';
import { connect, describeTarget, isSentinel, redisOptions, type RedisTarget } from './lib/redis.js';
import { ReplicaAcks } from './lib/replicas.js';
import { Releasers } from './lib/releasers.js';
import { clusterNodes } from './ops/nodes.js';
import { clusterStatus } from './ops/status.js';
import { mongoStreams, StuckFinder } from './ops/stuck.js';
import { loadWaitFacts, WaitRecorder } from './ops/waiting.js';
import { DockerRuntime } from './runtime/docker.js';
import { buildTaskImages } from './runtime/image-build.js';
import type { Runtime, WarmRuntime } from './runtime/types.js';
import { addWarmIdle, noteTasks } from './runs/daily-usage.js';
import { EndedRuns } from './runs/ended.js';
import { newestEnded } from './runs/ended-consumer.js';
import { RedisEpoch } from './runs/epoch.js';
import { keys } from './runs/keys.js';
import { RunletEvents } from './runs/events.js';
import { RunletMetrics } from './runs/metrics.js';
import { startRetentionSweep } from './runs/retention.js';
import { RunStore } from './runs/store.js';
import type { RunRequest } from './runs/types.js';
import { manualRequest, retryRequest } from './triggers/manual.js';
import { resetStream } from './triggers/mongo/cursor.js';
import { RunningTriggers } from './triggers/running.js';
import type { TriggerDeps } from './triggers/types.js';

export interface DaemonOptions {
  readonly config: RunletConfig;
  /** What a reload reads (SIGHUP, `runlet reload`); default: the config's file again, with the daemon's environment. */
  readonly readConfig?: () => RunletConfig;
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
  /**
   * RUNLET_TOKENS_FILE: tokens with names and roles (config/tokens.ts), beside RUNLET_TOKEN (one
   * admin). Read at start (an error stops the start) and again by POST /api/reload.
   */
  readonly tokensFile?: string;
  /** More Host names to answer to (RUNLET_ALLOWED_HOSTS); "*" for any, with a token only. */
  readonly allowedHosts?: readonly string[];
  readonly docker?: Docker;
  readonly runtime?: Runtime;
  /** How long stop() waits for runs in progress before leaving them to the next start. */
  readonly shutdownGraceMs?: number;
  /** Extra labels on every container this daemon starts (RUNLET_LABELS). */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * The lease (RUNLET_STALLED_MS, default 30 s): a run's queue job lock and a daemon's heartbeat
   * both lapse after this long without renewal, so a node silent this long has its runs
   * delivered again and judged by others; the reconciler runs this often.
   */
  readonly stalledMs?: number;
  /** How often runs past retention.maxAge are deleted (default 10 min). */
  readonly retentionSweepMs?: number;
  /** Alert sending and the stuck scan's period (tests shorten them). */
  readonly alerts?: AlertsOptions;
  /** The HTTP functions listener (RUNLET_FN_PORT, default 8081; 0 picks a free port), opened only when a task has `http:`. */
  readonly fnPort?: number;
  /** RUNLET_FN_HOST, default 0.0.0.0: functions are the public side, each with its own auth. */
  readonly fnHost?: string;
}

export interface Daemon {
  readonly url: string;
  /** The HTTP functions listener's URL, when the config has functions. */
  readonly fnUrl?: string;
  readonly identity: Identity;
  readonly events: RunletEvents;
  readonly store: RunStore;
  readonly redis: Redis;
  readonly redisTarget: RedisTarget;
  submit(request: RunRequest): Promise<{ runId: string; created: boolean }>;
  /** Reads the config file again and applies it (daemon/reload.ts); throws ConfigError for a file with errors. */
  reload(): Promise<ConfigChanges>;
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
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  // First, before anything is started: a daemon that would be open to strangers doesn't start.
  // A tokens file closes the API as RUNLET_TOKEN does; its tokens are read (and checked) here too.
  const tokens = new ApiTokens(options.token, options.tokensFile ? () => loadTokens(options.tokensFile!) : undefined);
  const listen = listenPolicy({ ...options, token: options.token ?? (tokens.open ? undefined : 'tokens-file') });
  const releasers = new Releasers(options.logger);
  // Every part gets the live view: it reads the config a reload put in place.
  const live = new LiveConfig(options.config);
  const opts: DaemonOptions & { tokens: ApiTokens } = { ...options, config: live.view, tokens };
  try {
    // This node's room for runs: the workers decide by it, the heartbeat reports it.
    const admission = new NodeAdmission(opts.config);
    const storage = await startStorage(opts, admission, releasers);
    const docker = await startRuntime(opts);
    const dispatch = await startDispatch(opts, storage, admission, docker, releasers);
    const alerts = await startAlerts(opts, live, storage, dispatch, releasers);
    // The API is up before the triggers, so the route asks for a reloader made after them.
    let reloader: Reloader | undefined;
    const reload = () => reloader?.reload() ?? Promise.reject(new Error('the daemon is still starting; try again'));
    const url = await startHttp(opts, listen, storage, dispatch, docker.docker, reload, releasers);
    const fnUrl = await startFunctions(opts, storage, dispatch, releasers);
    const triggers = await startTriggers(opts, storage, dispatch, releasers);
    reloader = new Reloader({
      live,
      logger: opts.logger,
      read: options.readConfig ?? (() => loadConfig(live.current.file)),
      fixedAtStart: (next) => [...fixedAtStart(options.config, next), ...functionsFixedAtStart(options.config, next)],
      build: (next) => buildTaskImages(docker.docker, next, opts.logger),
      triggers,
      apply: async () => {
        const tasks = Object.values(live.current.tasks);
        // A raised limit admits parked runs now, not at the next sweep.
        await dispatch.gate.sweep().catch((err) => opts.logger.warn({ err }, 'could not admit parked runs after the reload'));
        await dispatch.workers.sync();
        await noteTasks(storage.redis, tasks).catch((err) => opts.logger.warn({ err }, 'could not note the tasks for the usage report'));
        await alerts.sync();
      },
    });
    // Added last, so released first: no reload runs while the rest stops.
    releasers.add('config reloads', () => reloader.close());

    const { identity, redis, redisTarget, store } = storage;
    opts.logger.info(
      {
        url,
        node: identity.node,
        redis: describeTarget(redisTarget),
        tasks: Object.keys(opts.config.tasks).length,
        // The first few by name, and how many: a log line stays a line with thousands of tasks.
        triggers: triggers.names().slice(0, 20),
        triggerCount: triggers.names().length,
      },
      'runlet is running',
    );
    dispatch.events.emit('daemon:ready', { url });
    return {
      url,
      ...(fnUrl !== undefined && { fnUrl }),
      identity,
      events: dispatch.events,
      store,
      redis,
      redisTarget,
      submit: (request) => dispatch.submit(request),
      reload,
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
  readonly heartbeat: Heartbeat;
  /** Set by a graceful stop that leaves runs in progress: the heartbeat is kept until then (identity.ts). */
  readonly leaving: { until?: number };
  /** What the heartbeat reports besides the admission's load, set by parts made after it (the reusable pools). */
  readonly reports: { reuse?: () => ReuseCounts };
  /** The newest ended-runs entry at start: where consumer groups this daemon creates begin. */
  readonly endedFrom: string;
}

/** runlet's Redis (its own embedded one unless REDIS_URL), the run store, and this daemon's identity and heartbeat (with the node's load). */
async function startStorage(opts: DaemonOptions, admission: NodeAdmission, releasers: Releasers): Promise<Storage> {
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
  // Before settling leftovers, which may end runs: their entries come after this one.
  const endedFrom = await newestEnded(redis);
  const cluster = await clusterIdFor(redis, rememberedClusterId(opts.dataDir, describeTarget(redisTarget)));
  if (cluster.restored)
    opts.logger.warn(
      { clusterId: cluster.id },
      'redis had no cluster id (emptied while no daemon ran?): put back the one this node last ran under, which its containers carry',
    );
  rememberClusterId(opts.dataDir, describeTarget(redisTarget), cluster.id);
  const identity: Identity = { node: opts.node, clusterId: cluster.id, daemonId: newDaemonId(opts.node) };
  const reports: Storage['reports'] = {};
  const heartbeat = startHeartbeat(
    redis,
    identity,
    { version: process.env.npm_package_version },
    () => ({ load: admission.load(), ...(reports.reuse && { reuse: reports.reuse() }) }),
    opts.stalledMs ?? DEFAULT_LEASE_MS,
  );
  const leaving: { until?: number } = {};
  releasers.add('heartbeat', () => heartbeat.stop(leaving.until));
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
  return { redisTarget, redis, store: new RunStore(redis, { replicas }), identity, epoch, heartbeat, leaving, reports, endedFrom };
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
  readonly queues: PoolQueues;
  readonly gate: TaskGate;
  readonly workers: PoolWorkers;
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
async function startDispatch(
  opts: DaemonOptions,
  storage: Storage,
  admission: NodeAdmission,
  engine: { runtime: Runtime },
  releasers: Releasers,
): Promise<Dispatch> {
  const { config, logger } = opts;
  const { redis, store, identity, redisTarget } = storage;
  const events = new RunletEvents();
  // One connection for every pool's queue and worker (each worker adds one blocking
  // connection of its own): connections follow pools, not tasks.
  // BullMQ makes and owns its connections (one per pool's queue, two per pool's worker), as
  // it does best through a failover: they follow pools, never tasks.
  const bull = redisOptions(redisTarget);
  const queues = new PoolQueues(bull);
  releasers.add('queues', () => queues.close());
  const gate = new TaskGate(redis, config, logger);
  releasers.add('task gate', async () => gate.close());
  // Pauses Redis loses (emptied, failed over) are put back from what the daemons saw.
  const pauses = new PauseState(redis, logger);
  releasers.add('pause sync', pauses.start());
  storage.epoch.onEmpty('paused tasks', () => pauses.all());
  const counts = { counts: (task: string) => gate.counts(task), upperCounts: (task: string) => gate.upperCounts(task) };
  const replaceOldest = async (task: string): Promise<void> => {
    const running = await store.list({ task, status: ['starting', 'running'], limit: 1000 });
    const oldest = running[running.length - 1];
    if (oldest) await cancelRun(redis, store, oldest.id, 'replaced by a newer run (overlap: replace)');
  };
  // Gauges of queue state are read from the task gate at scrape time: cluster-wide.
  const metrics = new RunletMetrics(events, { config, queueStates: () => gate.states() });
  const enqueueDeps: EnqueueDeps = {
    config,
    policies: [suspendedPolicy(pauses), overlapPolicy(counts, replaceOldest)],
    store,
    queues,
    gate,
    events,
    logger,
  };
  gate.onAdmitted = (task, runIds) => addAdmitted(enqueueDeps, task, runIds);
  const stopping = new AbortController();
  // Warm instances (`warm: N`, and scale to zero for functions) and reusable ones (`reuse:
  // true`) need the engine's warm side; a runtime without it (tests' fakes) runs every run cold.
  let workers: PoolWorkers | undefined;
  const runtime = engine.runtime;
  const warm = isWarmRuntime(runtime)
    ? new WarmPool({ config, runtime, admission, identity, events, logger, roomFreed: () => workers?.refresh() })
    : undefined;
  const reuse = await startReuse(opts, runtime, identity, events);
  events.on(
    'warm:idle',
    (e) =>
      void addWarmIdle(redis, e.task, e.idleMs, Date.now()).catch((err) =>
        logger.warn({ err }, 'could not add warm idle time to the daily usage'),
      ),
  );
  const ctx: RunContext = {
    config,
    store,
    runtime: engine.runtime,
    redis,
    identity,
    events,
    logger,
    queues,
    gate,
    active: new Map(),
    leaseMs: opts.stalledMs ?? DEFAULT_LEASE_MS,
    stopping: stopping.signal,
    ...(warm && { warm }),
    ...(reuse && { reuse }),
  };
  // Runs this daemon runs whose records an emptied Redis lost show again, from their containers' labels.
  storage.epoch.onEmpty('runs in progress', () => recordRunsInProgress(ctx));

  await noteTasks(redis, Object.values(config.tasks)).catch((err) => logger.warn({ err }, 'could not note the tasks for the usage report'));
  releasers.add(
    'retention sweep',
    startRetentionSweep(store, () => config.retention.maxAgeMs, logger, opts.retentionSweepMs),
  );
  const waits = new WaitRecorder(redis, store, identity, logger);
  releasers.add('wait reasons', () => waits.clear());
  // Made before settling, started after: the containers it adopts take their room first.
  workers = new PoolWorkers(bull, redis, config, admission, (runId, job) => runJob(ctx, runId, job), logger, opts.stalledMs, {
    events,
    waits,
    reserved: (task) => warm?.shed(task.name),
  });
  const settled = await settleLeftovers(ctx, workers);
  if (settled.adopted + settled.settled + settled.removed > 0) logger.info(settled, 'settled containers left by a previous process');
  // Before this daemon makes its own: idle warm and reusable containers of dead daemons of this node.
  const warmRemoved = await settleWarm(ctx).catch((err) => {
    logger.warn({ err }, 'could not settle warm containers left by a previous process');
    return 0;
  });
  if (warmRemoved > 0) logger.info({ removed: warmRemoved }, 'removed warm containers left by a previous process');
  if (warm) {
    // Released after the workers (added before them): no run takes an instance while they go.
    releasers.add('warm instances', () => warm.close());
    warm.start();
  }
  if (reuse) {
    releasers.add('reusable instances', () => reuse.close());
    reuse.start();
    storage.reports.reuse = () => reuse.counts();
  }
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
    stopping.abort();
    await workers.stopTaking();
    const grace = opts.shutdownGraceMs ?? 10_000;
    if (ctx.active.size > 0)
      logger.info(
        { running: ctx.active.size, graceMs: grace },
        'waiting for runs in progress; any still running after the grace are adopted by the next start',
      );
    const left = await workers.drain(grace);
    if (left > 0 || ctx.active.size > 0) {
      // Left running for the next start on this node to adopt: the heartbeat stays (marked
      // leaving) until the last of their deadlines, so no other node retries them meanwhile.
      const records = await store.getMany([...ctx.active.keys()]).catch(() => []);
      const until = Math.max(0, ...records.map((r) => r?.deadline ?? 0));
      if (until > Date.now()) storage.leaving.until = until;
      logger.warn(
        { left: ctx.active.size, heartbeatUntil: until > 0 ? new Date(until).toISOString() : undefined },
        'runs still in progress are left to the next start',
      );
    }
    await workers.close(true);
  });
  await workers.start();
  // The holder's side of the fence, and the periodic settling of what nobody holds.
  releasers.add('claim watch', watchClaims(ctx));
  releasers.add('reconciler', startReconciler(ctx, workers));

  const ended = new EndedRuns(redis, store, logger);
  // Every daemon frees the slot of every run that ends; the gate admits the next once.
  ended.onEnded((entry) => {
    const freeing =
      entry.status === 'lost'
        ? store.get(entry.run).then((run) => gate.ended(entry.task, entry.run, entry.status, run?.deadline))
        : gate.ended(entry.task, entry.run, entry.status, undefined);
    void freeing
      .then((admitted) => (admitted.length > 0 ? addAdmitted(enqueueDeps, entry.task, admitted) : undefined))
      .catch((err) => logger.warn({ err, runId: entry.run }, 'could not free the task slot of an ended run; the sweep frees it'));
  });
  ended.start();
  releasers.add('ended runs reader', () => ended.stop());
  const stuck = new StuckFinder({
    config,
    inProgress: () => store.list({ status: ['queued', 'starting', 'running'], limit: 1000 }),
    facts: (now) => loadWaitFacts(redis, config, now),
    streams: mongoStreams(redis, config),
  });
  return { events, queues, gate, workers, pauses, metrics, ended, stuck, submit: (request, o = {}) => enqueue(enqueueDeps, request, o) };
}

function isWarmRuntime(runtime: Runtime): runtime is Runtime & WarmRuntime {
  return typeof (runtime as Partial<WarmRuntime>).warm === 'function' && typeof (runtime as Partial<WarmRuntime>).deliver === 'function';
}

/**
 * The Lambda Runtime API and the reusable pools, when a task has `reuse: true` at start and
 * the runtime is Docker's (a reload that adds reuse to a task runs it cold until a restart).
 */
async function startReuse(
  opts: DaemonOptions,
  runtime: Runtime,
  identity: Identity,
  events: RunletEvents,
): Promise<ReusePools | undefined> {
  if (!Object.values(opts.config.tasks).some((t) => t.reuse) || !(runtime instanceof DockerRuntime)) return undefined;
  const docker = opts.docker ?? new Docker();
  const api = await LambdaRuntimeApi.listen((await hostAddress(docker)).address);
  return new ReusePools({ config: opts.config, runtime, api, identity, events, logger: opts.logger });
}

/**
 * Alerts for the rules of the config now, if it has any; `sync` after a reload replaces them
 * when the rules changed (each rule set reads in a consumer group of its own, alerts.ts).
 */
async function startAlerts(
  opts: DaemonOptions,
  live: LiveConfig,
  storage: Storage,
  dispatch: Dispatch,
  releasers: Releasers,
): Promise<{ sync(): Promise<void> }> {
  let alerts: Alerts | undefined;
  /** Where the group of rules a reload replaced stopped (Alerts.handOver). */
  let handedOver: string | undefined;
  const sync = async (reloading: boolean) => {
    const rules = live.current.alerts;
    if (alerts?.group === alertsGroup(rules)) return;
    if (alerts) {
      handedOver = await alerts.handOver();
      alerts = undefined;
    }
    // Nothing to do without rules: no consumer group, no scan.
    if (rules.length === 0) return;
    const next = new Alerts(
      {
        // Fixed, not the live view: an Alerts is one rule set.
        config: live.current,
        redis: storage.redis,
        store: storage.store,
        identity: storage.identity,
        events: dispatch.events,
        logger: opts.logger,
        epoch: storage.epoch,
        endedFrom: storage.endedFrom,
        findStuck: () => dispatch.stuck.find(),
      },
      opts.alerts,
    );
    // At start from the daemon's start; after a reload from where the old rules stopped, or now.
    await next.start(reloading ? (handedOver ?? '$') : undefined);
    alerts = next;
    handedOver = undefined;
  };
  await sync(false);
  releasers.add('alerts', async () => alerts?.stop());
  return { sync: () => sync(true) };
}

/** The ops API, hooks, live views and dashboard; returns the URL it answers on. */
async function startHttp(
  opts: DaemonOptions & { tokens: ApiTokens },
  listen: ReturnType<typeof listenPolicy>,
  storage: Storage,
  dispatch: Dispatch,
  docker: Docker,
  reload: () => Promise<ConfigChanges>,
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
    tokens: opts.tokens,
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
    nodes: () => clusterNodes(redis),
    reload,
  };
  const app = buildServer(httpDeps, logger);
  releasers.add('http server', () => app.close());
  const { host } = listen;
  // listenPolicy allowed no token on a loopback address only; local users are still in.
  if (opts.tokens.open)
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

/** The HTTP functions listener, on its own port, when the config has functions at start. */
async function startFunctions(
  opts: DaemonOptions,
  storage: Storage,
  dispatch: Dispatch,
  releasers: Releasers,
): Promise<string | undefined> {
  if (!hasFunctions(opts.config)) return undefined;
  const { redis, store } = storage;
  const fn = await listenFunctions(
    {
      config: opts.config,
      redis,
      store,
      ended: dispatch.ended,
      submit: (r) => dispatch.submit(r),
      cancelRun: (id) => cancelRun(redis, store, id),
    },
    opts.logger,
    { port: opts.fnPort ?? 8081, host: opts.fnHost ?? '0.0.0.0' },
  );
  releasers.add('functions listener', () => fn.close());
  opts.logger.info({ url: fn.url }, 'HTTP functions listening');
  return fn.url;
}

/** Last: nothing fires before the rest can take it (triggers/running.ts). */
async function startTriggers(opts: DaemonOptions, storage: Storage, dispatch: Dispatch, releasers: Releasers): Promise<RunningTriggers> {
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
    endedFrom: storage.endedFrom,
  };
  const triggers = new RunningTriggers(deps);
  releasers.add('triggers', () => triggers.stop());
  await triggers.start();
  return triggers;
}
