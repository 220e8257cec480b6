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
  /** "uid:gid", "uid" or a user name of the image; default: the image's own user. */
  readonly user?: string;
  /** Read-only root filesystem; /tmp (a 64 MiB tmpfs) and /runlet stay writable. */
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
