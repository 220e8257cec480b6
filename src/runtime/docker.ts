import Docker from 'dockerode';
import pino, { type Logger } from 'pino';
import { engineMessage, engineStatus, notConnected, RunFailedToStart } from './errors.js';
import { HOST_ALIAS, hostAddress } from './host-address.js';
import { isolationHostConfig } from './isolation.js';
import { LABEL_MANAGED, LABEL_REUSE, LABEL_RUN, LABEL_TASK, LABEL_WARM } from './labels.js';
import { LogFollower } from './log-tail.js';
import { engineTime, outcomeOf } from './outcome.js';
import { readOutput } from './output.js';
import { placeRunDirOnHost, readOutputOnHost, runDirSource } from './run-dir-host.js';
import { startFailureReason } from './reasons.js';
import {
  PAYLOAD_FILE_ENV,
  PAYLOAD_PATH,
  placeRunDir,
  RUN_DIR,
  RUN_DIR_VOLUME_MOUNT,
  runDirVolumeOnly,
  usesRunDirVolume,
} from './run-dir.js';
import { type HeldStdin, StdinFeed } from './stdin.js';
import { signalRetryDelay, Stopper } from './stop.js';
import type {
  DeliveredRun,
  KillOptions,
  KillResult,
  OwnedContainer,
  PreparedRun,
  RunResult,
  RunSpec,
  Runtime,
  WaitOptions,
  WarmContainer,
  WarmInstance,
  WarmRuntime,
  WarmSpec,
} from './types.js';
import { envRecord, eventBytes, imageCommand, placeShim, SHIM_BUSYBOX, SHIM_DIR, SHIM_SCRIPT, shellRestore } from './warm-shim.js';
import { randomBytes } from 'node:crypto';

/** After exit the log stream normally ends within milliseconds; this bounds a stuck one. */
const LOG_DRAIN_MS = 2_000;
/** setTimeout's largest delay; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * How long prepare waits for an engine it cannot connect to (restarting, say) before the
 * attempt fails: a retry after an engine restart comes sooner than the engine does.
 */
const ENGINE_BACK_MS = 30_000;
/**
 * A wait on a container that is past its deadline and kill grace by this much asks the
 * engine where the container is (and again as often): a frozen engine breaks no connection,
 * so only a question with a time limit tells that it stopped answering.
 */
const OVERDUE_CHECK_MS = 5_000;
/** An inspect answers in milliseconds; one that has not after this counts as "the engine does not answer". */
const ENGINE_QUESTION_MS = 10_000;
/**
 * A wait whose engine does not answer ends as `lost` once past the run's deadline and kill
 * grace, but never before the engine has been silent this long: a restart that happens to
 * straddle the deadline takes a few seconds, and the container may well still be there.
 */
const ENGINE_SILENT_MIN_MS = 10_000;
/** After the log stream ended on its own, the wait answers within moments; past this it is asked again. */
const WAIT_AFTER_LOGS_MS = 5_000;
/** How often kill() looks whether the container it signalled has ended. */
const KILL_POLL_MS = 250;
/** How long kill() goes on sending signals to an engine that does not answer, past the grace period. */
const KILL_GIVE_UP_MS = 30_000;

export interface DockerRuntimeOptions {
  readonly docker?: Docker;
  readonly logger?: Logger;
  /** Put on every container besides the spec's own (RUNLET_LABELS: an operator's tooling, a test suite's id). */
  readonly labels?: Readonly<Record<string, string>>;
  /** The static busybox copied into warm instances as their shim (default /bin/busybox, Debian's busybox-static). */
  readonly shimSource?: string;
  /**
   * Read and write /runlet on the host when it is a local volume this process can see
   * (run-dir-host.ts; default true). False: always through the engine's archive API.
   */
  readonly runDirOnHost?: boolean;
}

/**
 * How waiting ended: an exit code; the container gone (`failed`, with why); or its engine
 * silent past the run's deadline (`unreachable`: the attempt is `lost`, its container may
 * still be running there).
 */
type Exit = { readonly statusCode: number } | { readonly failed: string } | { readonly unreachable: string };
/** Where the container is, as the engine answered after a break: still running, or ended. */
type Found = Exit | { readonly running: true };

/**
 * Runs each RunSpec in its own container on the local Docker engine, with the limits of the
 * spec enforced by the engine (memory without swap, CPU, pids) and a timeout enforced here.
 * Never pulls: an image must already be on the engine.
 */
export class DockerRuntime implements Runtime, WarmRuntime {
  private readonly docker: Docker;
  private readonly logger: Logger;
  private readonly labels: Readonly<Record<string, string>>;
  /**
   * When start() returned, by container id. The timeout counts from start and this process
   * knows that moment first; adopted containers carry the engine's StartedAt instead.
   */
  private readonly startedAt = new Map<string, number>();
  /** Payload deliveries still connected, by container id: closed once the container exits. */
  private readonly stdin = new Map<string, StdinFeed>();
  /** Warm instances' stdin connections, waiting for their one event, by container id. */
  private readonly held = new Map<string, { readonly stdin: HeldStdin; readonly restore: readonly string[] }>();
  /** When a warm instance got its run, by container id: the run's start as its record tells it. */
  private readonly deliveredAt = new Map<string, number>();
  private readonly shimSource: string | undefined;
  private swappinessSupported: Promise<boolean> | undefined;
  private hostEntry: Promise<string> | undefined;
  private readonly runDirOnHost: boolean;

  constructor(opts: DockerRuntimeOptions = {}) {
    this.docker = opts.docker ?? new Docker();
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.labels = opts.labels ?? {};
    this.shimSource = opts.shimSource;
    this.runDirOnHost = opts.runDirOnHost ?? true;
  }

  async prepare(spec: RunSpec): Promise<PreparedRun> {
    const name = containerName(spec.task, spec.runId, spec.attempt);
    const hasPayload = spec.payload !== undefined;
    const [baseHostConfig, imageUser] = await Promise.all([
      this.hostConfig(spec),
      // Only asked when it decides something: a run with a payload or a user of its own does not need it.
      hasPayload || spec.user ? undefined : this.imageUser(spec.image),
    ]);
    const volumeOnly = imageUser !== null && runDirVolumeOnly(spec, imageUser);
    const hostConfig: Docker.HostConfig = volumeOnly ? { ...baseHostConfig, Mounts: [RUN_DIR_VOLUME_MOUNT] } : baseHostConfig;
    let container: Docker.Container;
    try {
      container = await this.whenEngineAnswers(spec, () =>
        this.docker.createContainer({
          name,
          Image: spec.image,
          Cmd: spec.command ? [...spec.command] : undefined,
          User: spec.user || undefined,
          // The env goes to the engine and nowhere else: it may hold secrets, so it is never logged.
          // Ours last, so spec.env cannot point the program at another file.
          Env: [
            ...Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
            ...(hasPayload ? [`${PAYLOAD_FILE_ENV}=${PAYLOAD_PATH}`] : []),
          ],
          // Ours last, so spec.labels cannot disown the container.
          Labels: { ...this.labels, ...spec.labels, [LABEL_MANAGED]: 'true', [LABEL_RUN]: spec.runId, [LABEL_TASK]: spec.task },
          Tty: false,
          // With a payload, stdin is open for the one attach start() makes and closes after it;
          // without, the program reads EOF at once, as before.
          OpenStdin: hasPayload,
          StdinOnce: hasPayload,
          AttachStdin: hasPayload,
          AttachStdout: false,
          AttachStderr: false,
          ...(!volumeOnly && usesRunDirVolume(spec) ? { Volumes: { [RUN_DIR]: {} } } : {}),
          HostConfig: hostConfig,
        }),
      );
    } catch (err) {
      throw createFailure(spec, name, err);
    }
    try {
      if (!volumeOnly) await this.placeRunDir(container, spec);
    } catch (err) {
      await this.remove(container.id).catch((removeErr) =>
        this.logger.warn({ err: removeErr, runId: spec.runId }, 'could not remove a container that could not be prepared'),
      );
      throw new RunFailedToStart(`could not create ${RUN_DIR} in the container: ${engineMessage(err)}`, { cause: err });
    }
    this.logger.debug(
      { runId: spec.runId, task: spec.task, image: spec.image, containerId: container.id.slice(0, 12) },
      'container created',
    );
    return { runId: spec.runId, containerId: container.id, spec };
  }

  async start(run: PreparedRun): Promise<void> {
    const container = this.docker.getContainer(run.containerId);
    // Attached before start, so the program can't read stdin before the payload is there.
    if (run.spec.payload !== undefined) {
      try {
        this.stdin.set(
          run.containerId,
          await StdinFeed.open(container, Buffer.from(run.spec.payload, 'utf8'), this.logger.child({ runId: run.runId })),
        );
      } catch (err) {
        await this.removeUnstarted(run);
        throw new RunFailedToStart(`could not attach to the container to deliver the payload on stdin: ${engineMessage(err)}`, {
          cause: err,
        });
      }
    }
    try {
      await container.start();
    } catch (err) {
      await this.removeUnstarted(run);
      // A 404 may also name another container (e.g. one whose network this one joins).
      if (engineStatus(err) === 404 && engineMessage(err).includes(run.containerId))
        throw new RunFailedToStart(`the container for run ${run.runId} was removed before it started`, { cause: err });
      const reason = startFailureReason(engineMessage(err));
      throw new RunFailedToStart(reason.startsWith('command ') ? reason : `the engine could not start the container: ${reason}`, {
        cause: err,
      });
    }
    this.startedAt.set(run.containerId, Date.now());
  }

  async wait(run: PreparedRun, opts: WaitOptions = {}): Promise<RunResult> {
    const { spec, containerId } = run;
    const log = this.logger.child({ runId: run.runId, task: spec.task, containerId: containerId.slice(0, 12) });
    const container = this.docker.getContainer(containerId);
    const follower = new LogFollower(container, opts.onOutput, log, opts.onLog);
    const stopper = new Stopper(container, spec.killGraceMs, log);

    const deadline = opts.deadline ?? (await this.startTime(container)) + spec.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      // Re-armed when the deadline is beyond what one timer can hold.
      const left = deadline - Date.now();
      timer = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(() => stopper.stop('timeout'), Math.max(0, left));
    };
    arm();
    const onCancel = () => stopper.stop('cancel', typeof opts.cancel?.reason === 'string' ? opts.cancel.reason : undefined);
    if (opts.cancel?.aborted) onCancel();
    else opts.cancel?.addEventListener('abort', onCancel, { once: true });

    let exit: Exit;
    try {
      exit = await this.waitForExit(container, follower, stopper, deadline + spec.killGraceMs, log);
    } finally {
      clearTimeout(timer);
      this.closeStdin(containerId);
      stopper.exited();
      opts.cancel?.removeEventListener('abort', onCancel);
    }
    await stopper.settled();
    await settledWithin(follower.ended, LOG_DRAIN_MS);
    const deliveredAt = this.deliveredAt.get(containerId);
    follower.stop();
    this.startedAt.delete(containerId);
    this.deliveredAt.delete(containerId);
    if ('unreachable' in exit) {
      // Nothing more can be read: the tail is what was followed.
      const { text: logTail, end: logBytes } = follower.tail.snapshot();
      return { outcome: 'lost', reason: exit.unreachable, logTail, logBytes };
    }
    // The final tail is always read again from the finished log: the follow stream can end
    // before the engine flushed a last line without a newline (json-file writes partial
    // lines at exit), and a broken stream may have left a gap.
    await follower.reread(container).catch((err: unknown) => log.warn({ err }, 'could not read the log after exit'));
    const { text: logTail, end: logBytes } = follower.tail.snapshot();
    if ('failed' in exit) return { outcome: 'failed', reason: exit.failed, logTail, logBytes };

    // output.json is read now, after exit and before the owner removes the container: from
    // the host when /runlet is a local volume we can see (run-dir-host.ts), else through the engine.
    const info = await container.inspect().catch((err: unknown) => {
      log.warn({ err }, 'could not inspect the container after it ended');
      return engineStatus(err) === 404 ? null : undefined;
    });
    const state = info && info.State;
    const hostDir = this.runDirOnHost ? runDirSource(info ?? undefined) : undefined;
    const captured = (hostDir && (await readOutputOnHost(hostDir))) || (await readOutput(container));
    // Force-removed by someone else while running: the 137 is theirs, not the program's.
    if (state === null)
      return {
        outcome: 'failed',
        exitCode: exit.statusCode,
        reason: `container ${containerId.slice(0, 12)} was removed outside this runtime before its end could be read (exit code ${exit.statusCode})`,
        logTail,
        logBytes,
      };
    if (state?.Status === 'created') return { outcome: 'failed', reason: 'the container was never started', logTail, logBytes };
    if (captured.outputError) log.info({ outputError: captured.outputError }, 'output.json not stored as it is');
    const result = outcomeOf(
      {
        exitCode: state?.ExitCode ?? exit.statusCode,
        oomKilled: state?.OOMKilled ?? false,
        // A warm instance's run started when it was delivered, not when its container did.
        startedAt: deliveredAt ?? engineTime(state?.StartedAt),
        finishedAt: engineTime(state?.FinishedAt),
        engineError: state?.Error || undefined,
        stopped: stopper.outcome,
      },
      spec,
      logTail,
    );
    return { ...result, ...captured, logBytes };
  }

  /** /runlet (and its payload) before start: on the host when it is a local volume we can see, else through the engine. */
  private async placeRunDir(container: Docker.Container, spec: Pick<RunSpec, 'payload' | 'readOnly'>): Promise<void> {
    if (this.runDirOnHost && usesRunDirVolume(spec)) {
      const hostDir = runDirSource(await container.inspect().catch(() => undefined));
      const payload = spec.payload === undefined ? undefined : Buffer.from(spec.payload, 'utf8');
      if (hostDir && (await placeRunDirOnHost(hostDir, payload))) return;
    }
    await placeRunDir(container, spec);
  }

  async remove(containerId: string): Promise<void> {
    this.startedAt.delete(containerId);
    this.deliveredAt.delete(containerId);
    this.held.get(containerId)?.stdin.close();
    this.held.delete(containerId);
    this.closeStdin(containerId);
    try {
      await this.docker.getContainer(containerId).remove({ force: true, v: true });
    } catch (err) {
      const status = engineStatus(err);
      if (status === 404) return;
      if (status === 409 && /already in progress/i.test(engineMessage(err))) return;
      throw err;
    }
  }

  async kill(containerId: string, opts: KillOptions): Promise<KillResult> {
    const log = this.logger.child({ containerId: containerId.slice(0, 12), reason: opts.reason });
    const container = this.docker.getContainer(containerId);
    const giveUpAt = Date.now() + (opts.giveUpAfterMs ?? opts.graceMs + KILL_GIVE_UP_MS);
    // The Stopper sends and resends the signals; this loop only watches for the end.
    const stopper = new Stopper<string>(container, opts.graceMs, log);
    try {
      for (let failures = 0; ;) {
        let running: boolean;
        try {
          running = (await container.inspect({ abortSignal: AbortSignal.timeout(ENGINE_QUESTION_MS) })).State.Running;
          if (failures > 0) stopper.retryNow();
          failures = 0;
        } catch (err) {
          if (engineStatus(err) === 404) return 'gone';
          if (failures === 0) log.warn({ err }, 'the Docker engine does not answer; asking again until it does, to stop the container');
          if (Date.now() >= giveUpAt) return 'gave_up';
          await delay(signalRetryDelay(failures++));
          continue;
        }
        if (!running) return 'stopped';
        if (Date.now() >= giveUpAt) {
          log.warn('the container still runs after the signals; giving up for now');
          return 'gave_up';
        }
        stopper.stop(opts.reason);
        await delay(KILL_POLL_MS);
      }
    } finally {
      stopper.exited();
    }
  }

  async list(labels: Readonly<Record<string, string>>): Promise<OwnedContainer[]> {
    // Always scoped to runlet's own containers: an empty filter must not list the whole engine.
    const filter = Object.entries({ ...labels, [LABEL_MANAGED]: 'true' }).map(([key, value]) => `${key}=${value}`);
    const infos = await this.docker.listContainers({ all: true, filters: { label: filter } });
    const owned = await Promise.all(
      infos.map(async (info): Promise<OwnedContainer | undefined> => {
        const runId = info.Labels[LABEL_RUN];
        if (!runId) return undefined;
        let startedAt: number | undefined;
        if (info.State !== 'created') {
          // The list has only the creation time; the timeout counts from the start.
          const inspected = await this.docker
            .getContainer(info.Id)
            .inspect()
            .catch(() => undefined);
          if (!inspected) return undefined; // removed since the list
          startedAt = engineTime(inspected.State.StartedAt);
        }
        return {
          containerId: info.Id,
          runId,
          task: info.Labels[LABEL_TASK] ?? '',
          labels: info.Labels,
          running: info.State === 'running',
          startedAt,
        };
      }),
    );
    return owned.filter((c): c is OwnedContainer => c !== undefined);
  }

  async warm(spec: WarmSpec): Promise<WarmInstance> {
    const createdAt = Date.now();
    const instanceId = `W${createdAt.toString(36)}${randomBytes(5).toString('hex')}`.toUpperCase();
    const name = `runlet-warm-${spec.task}-${instanceId}`.toLowerCase().replace(/[^a-z0-9_.-]/g, '-');
    const probe = { ...spec, runId: instanceId, attempt: 1, env: spec.env ?? {}, timeoutMs: 0 } satisfies RunSpec;
    let command: string[];
    let restore: string[];
    try {
      const image = await this.whenEngineAnswers(probe, () => this.docker.getImage(spec.image).inspect());
      command = imageCommand(image.Config, spec.command);
      restore = shellRestore({ ...envRecord(image.Config.Env), ...spec.env });
    } catch (err) {
      if (err instanceof RunFailedToStart) throw err;
      throw createFailure(probe, name, err);
    }
    const hostConfig = await this.hostConfig(spec);
    const inVolume = usesRunDirVolume(spec);
    let container: Docker.Container;
    try {
      container = await this.whenEngineAnswers(probe, () =>
        this.docker.createContainer({
          name,
          Image: spec.image,
          // The shim runs first and execs the image's own command (ENTRYPOINT + CMD, resolved above) once.
          Entrypoint: [SHIM_BUSYBOX, 'sh', '-c', SHIM_SCRIPT, 'runlet-shim'],
          Cmd: command,
          User: spec.user || undefined,
          // Only the task's own settings: the run's env (secrets included) comes on stdin at delivery, never logged.
          Env: Object.entries(spec.env ?? {}).map(([key, value]) => `${key}=${value}`),
          // No runlet.run: see LABEL_WARM.
          Labels: { ...this.labels, ...spec.labels, [LABEL_MANAGED]: 'true', [LABEL_WARM]: instanceId, [LABEL_TASK]: spec.task },
          Tty: false,
          // The event comes on stdin; the engine closes it when our one attach ends (StdinOnce), so the
          // command reads the payload then EOF, as in a cold run.
          OpenStdin: true,
          StdinOnce: true,
          AttachStdin: true,
          AttachStdout: false,
          AttachStderr: false,
          ...(inVolume ? { Volumes: { [RUN_DIR]: {}, [SHIM_DIR]: {} } } : {}),
          HostConfig: hostConfig,
        }),
      );
    } catch (err) {
      throw createFailure(probe, name, err);
    }
    const log = this.logger.child({ instanceId, task: spec.task, containerId: container.id.slice(0, 12) });
    try {
      await this.placeRunDir(container, { readOnly: spec.readOnly });
      await placeShim(container, inVolume, this.shimSource);
      this.held.set(container.id, { stdin: await StdinFeed.hold(container, log), restore });
      await container.start();
    } catch (err) {
      await this.remove(container.id).catch((removeErr) =>
        log.warn({ err: removeErr }, 'could not remove a warm instance that failed to start'),
      );
      if (err instanceof RunFailedToStart) throw err;
      throw new RunFailedToStart(`could not start a warm instance: ${startFailureReason(engineMessage(err))}`, { cause: err });
    }
    log.debug('warm instance started');
    return { instanceId, containerId: container.id, spec, createdAt, startedAt: Date.now() };
  }

  /**
   * Creates and starts a container that runs the task's own command (no shim) for many
   * invocations, labelled as a reusable instance (LABEL_REUSE, no runlet.run). `env` is
   * added to the task's (AWS_LAMBDA_RUNTIME_API and friends): it goes to the engine only.
   * reusable.ts drives it; wait() on `{ runId: instanceId, containerId, spec }` watches its end.
   */
  async startReusable(spec: WarmSpec, env: Readonly<Record<string, string>>): Promise<WarmInstance> {
    const createdAt = Date.now();
    const instanceId = `L${createdAt.toString(36)}${randomBytes(5).toString('hex')}`.toUpperCase();
    const name = `runlet-reuse-${spec.task}-${instanceId}`.toLowerCase().replace(/[^a-z0-9_.-]/g, '-');
    const probe = { ...spec, runId: instanceId, attempt: 1, env: spec.env ?? {}, timeoutMs: 0 } satisfies RunSpec;
    const hostConfig = await this.hostConfig(spec);
    let container: Docker.Container;
    try {
      container = await this.whenEngineAnswers(probe, () =>
        this.docker.createContainer({
          name,
          Image: spec.image,
          Cmd: spec.command ? [...spec.command] : undefined,
          User: spec.user || undefined,
          Env: Object.entries({ ...spec.env, ...env }).map(([key, value]) => `${key}=${value}`),
          Labels: { ...this.labels, ...spec.labels, [LABEL_MANAGED]: 'true', [LABEL_REUSE]: instanceId, [LABEL_TASK]: spec.task },
          Tty: false,
          AttachStdout: false,
          AttachStderr: false,
          HostConfig: hostConfig,
        }),
      );
    } catch (err) {
      throw createFailure(probe, name, err);
    }
    try {
      await container.start();
    } catch (err) {
      await this.remove(container.id).catch(() => undefined);
      throw new RunFailedToStart(`could not start a reusable instance: ${startFailureReason(engineMessage(err))}`, { cause: err });
    }
    const startedAt = Date.now();
    this.startedAt.set(container.id, startedAt);
    return { instanceId, containerId: container.id, spec, createdAt, startedAt };
  }

  async deliver(instance: WarmInstance, run: RunSpec): Promise<DeliveredRun> {
    const misfit = warmMisfit(instance.spec, run);
    const held = this.held.get(instance.containerId);
    const why = misfit
      ? `run ${run.runId} does not fit warm instance ${instance.instanceId}: its ${misfit} differs`
      : !held
        ? `warm instance ${instance.instanceId} was already delivered or retired`
        : !held.stdin.open
          ? `warm instance ${instance.instanceId} is no longer waiting (its shim ended)`
          : undefined;
    // A refused instance is the caller's to retire (a misfit is still a good instance for another run).
    if (why) throw new RunFailedToStart(why);
    const bytes = eventBytes(run.env, run.payload, held!.restore);
    this.held.delete(instance.containerId);
    const deliveredAt = Date.now();
    // The timeout counts from here (wait() reads startedAt), and the record's start is this moment.
    this.startedAt.set(instance.containerId, deliveredAt);
    this.deliveredAt.set(instance.containerId, deliveredAt);
    // Kept with the run's stdin feeds: wait() and remove() close it as they close a cold run's.
    this.stdin.set(instance.containerId, held!.stdin);
    held!.stdin.send(bytes);
    this.logger.debug({ runId: run.runId, instanceId: instance.instanceId }, 'run delivered to a warm instance');
    return {
      runId: run.runId,
      containerId: instance.containerId,
      spec: run,
      instance,
      deliveredAt,
      idleMs: deliveredAt - instance.startedAt,
    };
  }

  async retire(instance: WarmInstance): Promise<{ idleMs: number }> {
    const idleMs = Date.now() - instance.startedAt;
    await this.remove(instance.containerId);
    return { idleMs };
  }

  async listWarm(labels: Readonly<Record<string, string>>): Promise<WarmContainer[]> {
    const filter = Object.entries({ ...labels, [LABEL_MANAGED]: 'true' }).map(([key, value]) => `${key}=${value}`);
    const infos = await this.docker.listContainers({ all: true, filters: { label: filter } });
    return infos.flatMap((info): WarmContainer[] => {
      const warm = info.Labels[LABEL_WARM];
      const reuse = info.Labels[LABEL_REUSE];
      if (!warm && !reuse) return [];
      return [
        {
          containerId: info.Id,
          instanceId: (warm || reuse)!,
          kind: warm ? 'warm' : 'reuse',
          task: info.Labels[LABEL_TASK] ?? '',
          labels: info.Labels,
          running: info.State === 'running',
          createdAt: info.Created * 1000,
        },
      ];
    });
  }

  adopt(container: OwnedContainer, spec: RunSpec): PreparedRun {
    if (container.startedAt !== undefined) this.startedAt.set(container.containerId, container.startedAt);
    return { runId: container.runId, containerId: container.containerId, spec };
  }

  /**
   * `request`, asked again every second while the engine cannot be connected to, for up to
   * ENGINE_BACK_MS. Only a failed connect is retried: that request never reached the engine,
   * so nothing was created and asking again cannot make a second container.
   */
  private async whenEngineAnswers<T>(spec: RunSpec, request: () => Promise<T>): Promise<T> {
    const giveUpAt = Date.now() + ENGINE_BACK_MS;
    for (let logged = false; ; logged = true) {
      try {
        return await request();
      } catch (err) {
        if (!notConnected(err) || Date.now() >= giveUpAt) throw err;
        if (!logged)
          this.logger.warn(
            { runId: spec.runId, attempt: spec.attempt, err },
            'the Docker engine does not answer; waiting for it before creating the container',
          );
        await delay(1_000);
      }
    }
  }

  private async hostConfig(spec: Pick<RunSpec, 'memoryBytes' | 'cpus' | 'pids' | 'readOnly' | 'network'>): Promise<Docker.HostConfig> {
    return {
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes, // equal to Memory: no swap, so the limit is a hard one
      ...((await this.supportsSwappiness()) ? { MemorySwappiness: 0 } : {}),
      NanoCpus: Math.round(spec.cpus * 1e9),
      PidsLimit: spec.pids,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      // tini as PID 1: forwards our SIGTERM to the program and reaps its zombies.
      Init: true,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '8m', 'max-file': '2' } },
      // We inspect the exit state before removing; remove() is always called by the owner.
      AutoRemove: false,
      // Read-only rootfs (with /tmp as tmpfs) and the network, as the task chose.
      ...isolationHostConfig(spec),
      // host.docker.internal: the host as this container reaches it (a service the task
      // talks to on the host), on every engine; pointless without a network.
      ...(spec.network === 'none' ? {} : { ExtraHosts: [await this.hostAliasEntry()] }),
      // No Binds or Mounts (only /runlet's anonymous volume with a read-only rootfs, see
      // run-dir.ts): in particular never the Docker socket.
    };
  }

  /**
   * The image's USER ('' = root), or null when it cannot be read (the create then reports a
   * missing image, and /runlet is made the general way). Asked at every run, not cached: a tag
   * rebuilt with another USER must not get a /runlet its program cannot write. It is a read of
   * the engine's image store, a few milliseconds.
   */
  private async imageUser(image: string): Promise<string | null> {
    try {
      return ((await this.docker.getImage(image).inspect()).Config?.User ?? '').trim();
    } catch {
      return null;
    }
  }

  /** The caller records the run as failed and has nothing left to clean up. */
  private async removeUnstarted(run: PreparedRun): Promise<void> {
    await this.remove(run.containerId).catch((removeErr) =>
      this.logger.warn({ err: removeErr, runId: run.runId }, 'could not remove a container that failed to start'),
    );
  }

  private closeStdin(containerId: string): void {
    this.stdin.get(containerId)?.close();
    this.stdin.delete(containerId);
  }

  /**
   * `host.docker.internal:<address>`, looked up once per runtime. If the lookup fails, the
   * engine's own `host-gateway` still resolves the name; the run must not fail for it.
   */
  private hostAliasEntry(): Promise<string> {
    this.hostEntry ??= hostAddress(this.docker, { labels: this.labels }).then(
      ({ address, source }) => {
        this.logger.debug({ address, source }, 'task containers reach the host at this address');
        return `${HOST_ALIAS}:${address}`;
      },
      (err: unknown) => {
        this.logger.warn({ err }, `could not find the host's address on the bridge; ${HOST_ALIAS} is left to the engine's host-gateway`);
        return `${HOST_ALIAS}:host-gateway`;
      },
    );
    return this.hostEntry;
  }

  /** cgroup v2 has no per-cgroup swappiness; newer engines reject the setting there. */
  private supportsSwappiness(): Promise<boolean> {
    this.swappinessSupported ??= this.docker.info().then(
      (info: { CgroupVersion?: string }) => info.CgroupVersion === '1',
      (err: unknown) => {
        this.logger.warn({ err }, 'could not read engine info; MemorySwappiness left unset');
        this.swappinessSupported = undefined;
        return false;
      },
    );
    return this.swappinessSupported;
  }

  private async startTime(container: Docker.Container): Promise<number> {
    const known = this.startedAt.get(container.id);
    if (known !== undefined) return known;
    const info = await container.inspect().catch(() => undefined);
    return engineTime(info?.State.StartedAt) ?? Date.now();
  }

  /**
   * The engine's long-poll wait: one request that returns when the container stops (at once
   * if it already has). It is not polled. But its answer can be lost: when the engine
   * restarts with live-restore, the container runs on while every connection to the old
   * dockerd breaks, and a wait whose response had begun never settles (dockerode sees the
   * reset on a response nobody listens to). So the wait is raced against the log stream
   * (a connection to the same engine, broken by the same restart) and, once the run is
   * overdue (past deadline and kill grace), against a check every OVERDUE_CHECK_MS. Whichever
   * fires, the engine is asked where the container is (`findAfterBreak`): still running →
   * wait again, follow the log on from the bytes already read, and resend at once a signal
   * the engine could not take while it was away; ended → its exit code;
   * gone → failed; engine silent past the deadline → unreachable.
   */
  private async waitForExit(
    container: Docker.Container,
    follower: LogFollower,
    stopper: Stopper,
    overdueAt: number,
    log: Logger,
  ): Promise<Exit> {
    let quickFailures = 0;
    let checkAt = overdueAt + OVERDUE_CHECK_MS;
    for (;;) {
      const asked = new AbortController();
      const askedAt = Date.now();
      const answer = container.wait({ abortSignal: asked.signal }).then(
        (res: { StatusCode: number }) => ({ statusCode: res.StatusCode }),
        (error: unknown) => ({ error }),
      );
      const overdue = timerUntil(checkAt);
      const woke = await Promise.race([answer, follower.ended.then(() => 'logs' as const), overdue.fired.then(() => 'overdue' as const)]);
      overdue.cancel();
      if (typeof woke === 'object' && 'statusCode' in woke) return woke;
      let late: { statusCode: number } | { error: unknown } | undefined = typeof woke === 'object' ? woke : undefined;
      if (woke === 'logs' && !follower.failed) {
        // The log ends as the container does: its wait answers within moments.
        const patience = timerUntil(Date.now() + WAIT_AFTER_LOGS_MS);
        late = await Promise.race([answer, patience.fired.then(() => undefined)]);
        patience.cancel();
        if (late && 'statusCode' in late) return late;
      }
      asked.abort();
      if (late && 'error' in late) {
        if (engineStatus(late.error) === 404) return { failed: removedReason(container) };
        quickFailures = Date.now() - askedAt < 1_000 ? quickFailures + 1 : 0;
        if (quickFailures >= 5)
          return { failed: `lost contact with the Docker engine while waiting for the container: ${engineMessage(late.error)}` };
        if (!notConnected(late.error)) log.warn({ err: late.error }, 'waiting for the container failed; asking the engine where it is');
      } else {
        quickFailures = 0;
        if (woke === 'logs')
          log.warn(
            follower.failed
              ? 'the log stream of the container broke (the engine restarted?); asking the engine where it is'
              : 'the log stream of the container ended but its wait did not answer; asking the engine where it is',
          );
      }
      const found = await this.findAfterBreak(container, overdueAt, log);
      if (!('running' in found)) return found;
      stopper.retryNow();
      if (woke === 'overdue') checkAt = Date.now() + OVERDUE_CHECK_MS;
      // A log stream that ended while the container runs on is followed again from where it stopped.
      if (!follower.following) {
        follower.resume(container);
        log.info({ offset: follower.tail.total }, 'following the log again from where it broke');
      }
      if (woke !== 'overdue') await delay(quickFailures > 0 ? 1_000 : 0);
    }
  }

  /**
   * Asks the engine, with a time limit, whether the container still runs, again with backoff
   * while it does not answer; gives up (`unreachable`) once past `giveUpAt` (the run's deadline
   * and kill grace) and silent for at least ENGINE_SILENT_MIN_MS.
   */
  private async findAfterBreak(container: Docker.Container, giveUpAt: number, log: Logger): Promise<Found> {
    let silentSince: number | undefined;
    for (let failures = 0; ; failures++) {
      // Silent since the question it did not answer was asked (a frozen engine takes the whole time limit to tell).
      const askedAt = Date.now();
      try {
        const info = await container.inspect({ abortSignal: AbortSignal.timeout(ENGINE_QUESTION_MS) });
        if (silentSince !== undefined)
          log.info({ silentMs: Date.now() - silentSince, running: info.State.Running }, 'the Docker engine answers again');
        if (info.State.Running) return { running: true };
        return { statusCode: info.State.ExitCode };
      } catch (err) {
        if (engineStatus(err) === 404) return { failed: removedReason(container) };
        const now = Date.now();
        if (silentSince === undefined) {
          silentSince = askedAt;
          log.warn({ err }, 'the Docker engine does not answer; asking again until it does (the container may still be running)');
        }
        if (now >= Math.max(giveUpAt, silentSince + ENGINE_SILENT_MIN_MS))
          return {
            unreachable: `the Docker engine did not answer since ${new Date(silentSince).toISOString()}, past the run's deadline and kill grace (${engineMessage(err)}); the container may still be running there`,
          };
        await delay(signalRetryDelay(failures));
      }
    }
  }
}

/**
 * `runlet-<task>-<runId>-a<attempt>`, reduced to the characters Docker accepts in a name.
 * One name per attempt: an attempt's container left on the engine (see RunSpec.attempt)
 * does not block the next one.
 */
export function containerName(task: string, runId: string, attempt: number): string {
  return `runlet-${task}-${runId}-a${attempt}`.toLowerCase().replace(/[^a-z0-9_.-]/g, '-');
}

function createFailure(spec: RunSpec, name: string, err: unknown): RunFailedToStart {
  const message = engineMessage(err);
  const status = engineStatus(err);
  if (status === 404 && /no such image/i.test(message)) {
    return new RunFailedToStart(`image "${spec.image}" not found locally (runlet never pulls: build or load it first)`, { cause: err });
  }
  if (status === 409)
    return new RunFailedToStart(
      `a container named "${name}" already exists (attempt ${spec.attempt} of run ${spec.runId} was prepared twice)`,
      { cause: err },
    );
  if (notConnected(err))
    return new RunFailedToStart(`the Docker engine did not answer for ${ENGINE_BACK_MS / 1000} s: ${message}`, { cause: err });
  return new RunFailedToStart(`the engine could not create the container: ${startFailureReason(message)}`, { cause: err });
}

/** What of a run differs from what a warm instance was made with, if anything: such a run must go cold. */
export function warmMisfit(warm: WarmSpec, run: RunSpec): string | undefined {
  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  if (warm.task !== run.task) return 'task';
  if (warm.image !== run.image) return 'image';
  if (!same(warm.command, run.command)) return 'command';
  if (warm.memoryBytes !== run.memoryBytes || warm.cpus !== run.cpus || warm.pids !== run.pids) return 'limits';
  if ((warm.user || '') !== (run.user || '')) return 'user';
  if (!!warm.readOnly !== !!run.readOnly) return 'readOnly';
  if ((warm.network || 'bridge') !== (run.network || 'bridge')) return 'network';
  return undefined;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function removedReason(container: Docker.Container): string {
  return `container ${container.id.slice(0, 12)} no longer exists (it was removed outside this runtime)`;
}

/** A timer that fires at epoch ms `at` (at once if past), and can be cancelled. */
function timerUntil(at: number): { fired: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const fired = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())))));
  return { fired, cancel: () => clearTimeout(timer) };
}

/** Waits for `promise` (which never rejects) but at most `ms`; the timer does not outlive it. */
async function settledWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
