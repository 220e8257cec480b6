/**
 * The runtime boundary: a RunSpec goes in, a RunResult comes out, limits are enforced
 * inside. The runtime never knows what triggered a run or where records are kept.
 * Any implementation must pass test/runtime.conformance.test.ts.
 */
export interface RunSpec {
  readonly runId: string;
  readonly task: string;
  /**
   * The run's attempt (1-based), part of the container's name: a retry never meets the name
   * of an earlier attempt's container that could not be removed when it ended (its engine
   * was restarting), which would refuse the create with 409 on every retry.
   */
  readonly attempt: number;
  readonly image: string;
  readonly command?: readonly string[];
  /** Passed only to the create call; never logged. */
  readonly env: Readonly<Record<string, string>>;
  readonly memoryBytes: number;
  readonly cpus: number;
  readonly pids: number;
  readonly timeoutMs: number;
  readonly killGraceMs: number;
  /** Extra labels (the runtime adds runlet.managed, runlet.run, runlet.task, runlet.node...). */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * The JSON text of the run's payload; undefined = no payload. The program gets it on stdin
   * (then EOF) and in /runlet/payload.json, named by env RUNLET_PAYLOAD_FILE.
   */
  readonly payload?: string;
  /**
   * "uid:gid", "uid" or a user name of the image; unset: the image's own user. The config
   * always sets it (65534:65534 unless the task chose, `root` to opt out).
   */
  readonly user?: string;
  /** Read-only root filesystem; /tmp (a 64 MiB tmpfs) and /runlet stay writable. The config's default is true. */
  readonly readOnly?: boolean;
  /** 'none', 'bridge' (the default) or a named network. The host's network is refused. */
  readonly network?: string;
}

/** Why the runtime stopped a container itself. Recorded before the signal is sent. */
export type KillReason = 'timeout' | 'cancel';

/**
 * `lost`: the container's engine stopped answering and was still silent past the run's
 * deadline and kill grace, so its end could not be known; the container may still be
 * running there (kill() or remove() it once the engine answers again).
 */
export type Outcome = 'succeeded' | 'failed' | 'timed_out' | 'oom_killed' | 'cancelled' | 'lost';

export interface RunResult {
  readonly outcome: Outcome;
  readonly exitCode?: number;
  readonly reason?: string;
  /** Epoch ms the container started and ended (as the engine reports them). */
  readonly startedAt?: number;
  readonly finishedAt?: number;
  /** Last 64 KiB of output. */
  readonly logTail: string;
  /**
   * Where logTail ends in the container's whole output, in bytes (the output's size, less a
   * trailing partial UTF-8 character): lets a live reader join the tail to the chunks it saw.
   */
  readonly logBytes?: number;
  /**
   * The text of /runlet/output.json as the program left it (at most 1 MiB), even
   * when it is not valid JSON (then outputError says so). Undefined when there was none, or
   * when it could not be stored (outputError says why).
   */
  readonly output?: string;
  /** Why output.json was not stored (too large, not a file) or is suspect (not valid JSON). */
  readonly outputError?: string;
}

/** A created (not yet started) container. */
export interface PreparedRun {
  readonly runId: string;
  readonly containerId: string;
  readonly spec: RunSpec;
}

export interface OwnedContainer {
  readonly containerId: string;
  readonly runId: string;
  readonly task: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly running: boolean;
  /** Epoch ms of the start, when it started. */
  readonly startedAt?: number;
}

export interface WaitOptions {
  /** Aborting stops the container (SIGTERM, then SIGKILL after killGraceMs): outcome `cancelled`. */
  readonly cancel?: AbortSignal;
  /**
   * Receives the log tail whenever it changed, at most every ~500 ms (the final tail is in the
   * result), with the byte offset in the whole output where that tail ends.
   */
  readonly onOutput?: (tail: string, endOffset: number) => void;
  /**
   * Receives each piece of output as the engine streams it, unthrottled, with its byte offset
   * in the container's output (stdout and stderr interleaved): for live log followers.
   */
  readonly onLog?: (chunk: Buffer, offset: number) => void;
  /**
   * Epoch ms when the run must be stopped, instead of start + spec.timeoutMs: for a process
   * re-attaching to a container that an earlier process started.
   */
  readonly deadline?: number;
}

export interface KillOptions {
  /** Why, for the logs (e.g. "past its deadline, its daemon gone"). */
  readonly reason: string;
  /** SIGTERM first, SIGKILL after this long if it still runs. */
  readonly graceMs: number;
  /** Stop asking an engine that does not answer after this long (default: grace + 30 s). */
  readonly giveUpAfterMs?: number;
}

/**
 * What kill() found: `stopped` (not running: already, or stopped now), `gone` (no such
 * container), `gave_up` (still not known to be stopped at giveUpAfterMs: the engine did not
 * answer, or the container did not end; call again later).
 */
export type KillResult = 'stopped' | 'gone' | 'gave_up';

export interface Runtime {
  /** Creates the container (never pulls). Throws RunFailedToStart with a reason a user can act on. */
  prepare(spec: RunSpec): Promise<PreparedRun>;
  start(run: PreparedRun): Promise<void>;
  /**
   * Waits for the container to end, enforcing spec.timeoutMs (SIGTERM, then SIGKILL after
   * spec.killGraceMs). `cancel` aborts the same way and yields `cancelled`.
   * `onOutput` receives the log tail whenever it grew (throttled), for live logs.
   * Every way a container can end resolves to a RunResult, including a container removed
   * under it (`failed`, with a reason): it does not throw for those. An engine that restarts
   * under a running container (live-restore) does not end the wait: it waits again on the
   * same container and follows its log on; an engine silent past the deadline and kill grace
   * ends it as `lost`.
   */
  wait(run: PreparedRun, opts?: WaitOptions): Promise<RunResult>;
  /** Removes the container and its anonymous volumes; ignores one that is already gone. */
  remove(containerId: string): Promise<void>;
  /** Containers carrying all of these labels. */
  list(labels: Readonly<Record<string, string>>): Promise<OwnedContainer[]>;
  /**
   * Stops a container for good, whoever started it: for a reconciler that enforces a deadline
   * from the container's labels, or ends a leftover whose owner is gone. SIGTERM, then SIGKILL
   * after graceMs; a signal the engine cannot take (restarting, frozen) is sent again with
   * backoff until the container no longer runs, is gone, or giveUpAfterMs passed. Idempotent:
   * a container already stopped or removed answers at once, without a signal. It does not
   * remove the container, so its exit state can still be read (remove() does). A wait() on the
   * same container reads the end as the program's own exit (e.g. 143), not as a timeout: kill
   * what no wait() in this process watches; for a run waited on here, its deadline and cancel
   * signal are the way. Never throws for an engine that does not answer.
   */
  kill(containerId: string, opts: KillOptions): Promise<KillResult>;
  /** Re-attaches to a container this runtime created earlier (e.g. by a process that died). */
  adopt(container: OwnedContainer, spec: RunSpec): PreparedRun;
}

/**
 * What a warm instance is made from: a RunSpec without the run. The image, command, limits,
 * hardening, user, readOnly and network are fixed at creation; the run's env, payload and
 * timeout come with deliver().
 */
export type WarmSpec = Omit<RunSpec, 'runId' | 'attempt' | 'payload' | 'env' | 'timeoutMs'> & {
  /** Put on the container at creation (the task's own settings); deliver()'s env is added over it. */
  readonly env?: Readonly<Record<string, string>>;
};

/** A container created and started ahead of any run, its shim waiting for one event. */
export interface WarmInstance {
  readonly instanceId: string;
  readonly containerId: string;
  readonly spec: WarmSpec;
  /** Epoch ms: warm() was asked (creation began) and the container had started (idle from then). */
  readonly createdAt: number;
  readonly startedAt: number;
}

/** A run delivered to a warm instance: wait() and remove() take it as any PreparedRun. */
export interface DeliveredRun extends PreparedRun {
  readonly instance: WarmInstance;
  /** Epoch ms the event was written: the run's timeout counts from here, as a cold run's from start(). */
  readonly deliveredAt: number;
  /** deliveredAt - instance.startedAt: container time spent idle, the price of the latency (usage reports it apart). */
  readonly idleMs: number;
}

/** A warm (or reusable) container as the engine lists it, by its labels. */
export interface WarmContainer {
  readonly containerId: string;
  readonly instanceId: string;
  readonly kind: 'warm' | 'reuse';
  readonly task: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly running: boolean;
  /** Epoch ms of the container's creation (as the engine lists it). */
  readonly createdAt: number;
}

/** Warm instances: runs that skip create and start. */
export interface WarmRuntime {
  /**
   * Creates and starts a container for `spec` whose shim waits for one event (never pulls).
   * Throws RunFailedToStart as prepare() does. The instance holds no run: retire() it or
   * deliver() one run to it.
   */
  warm(spec: WarmSpec): Promise<WarmInstance>;
  /**
   * Hands the run to the instance: its command starts at once with the run's env and payload
   * (stdin and /runlet/payload.json), exactly once. Then wait() / remove() as for a cold run;
   * the timeout counts from delivery. Throws RunFailedToStart if the run does not fit the
   * instance (another image, limits, user...) or the instance is no longer waiting (its shim
   * ended, it was delivered before): the caller then runs the run cold. A throw means the
   * command did not start (the instance is removed then).
   */
  deliver(instance: WarmInstance, run: RunSpec): Promise<DeliveredRun>;
  /** Removes an instance that will not get a run; idempotent. Returns its idle ms. */
  retire(instance: WarmInstance): Promise<{ idleMs: number }>;
  /** Warm and reusable containers carrying all of these labels (start-up settling removes them). */
  listWarm(labels: Readonly<Record<string, string>>): Promise<WarmContainer[]>;
}
