/**
 * The validated, normalised configuration: what every other module receives.
 * Units are in the names (`memoryBytes`, `timeoutMs`); strings like "512m" or "15m"
 * never leave src/config. The object is deep-frozen by `loadConfig`.
 */
export interface TaskConfig {
  /** The map key under `tasks:`. */
  readonly name: string;
  readonly description?: string;
  /** Image to run. For `build:` tasks this is the tag runlet builds (`runlet-build/<task>:latest`). */
  readonly image: string;
  /** Absolute path of a build context with a Dockerfile, built at start-up. */
  readonly build?: string;
  /** Overrides the image's CMD. Undefined keeps the image's own. */
  readonly command?: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Cron expression (5 or 6 fields, or @hourly/@daily/...). Undefined: no schedule. */
  readonly schedule?: string;
  /** IANA zone the schedule is read in. */
  readonly timezone: string;
  readonly memoryBytes: number;
  readonly cpus: number;
  readonly timeoutMs: number;
  readonly killGraceMs: number;
  readonly pids: number;
  /** Largest payload a run accepts; larger ones are refused, never truncated. */
  readonly maxPayloadBytes: number;
  /** docker run --user; undefined keeps the image's user. */
  readonly user?: string;
  readonly readOnly: boolean;
  /** "none", "bridge" or a named Docker network. */
  readonly network: string;
  /** Ticks are recorded as skipped instead of run (cluster-wide pause from the config). */
  readonly suspended: boolean;
  /** Missed ticks are run once at start-up if the latest is at most this old; 0 = never. */
  readonly catchupMs: number;
  readonly pool: string;
  /** Runs at once, cluster-wide (ignored with overlap: allow). */
  readonly concurrency: number;
  readonly overlap: 'queue' | 'bufferOne' | 'skip' | 'replace' | 'allow';
  /** With overlap: queue, most runs waiting; beyond it new runs are skipped. */
  readonly maxQueued: number;
  /** Random delay of up to this much per cron tick. */
  readonly jitterMs: number;
  /** What happens after a failed, timed-out, OOM-killed or lost attempt. */
  readonly retries: RetryPolicy;
}

/**
 * Retries of one run (same run id, one record). The wait after attempt n is
 * `delayMs × 2^(n-1)` (exponential) or `delayMs` (fixed), capped at `maxDelayMs`, less up
 * to 20% of jitter.
 */
export interface RetryPolicy {
  /** Attempts in all, the first included: 1 = never retried. */
  readonly attempts: number;
  readonly backoff: 'exponential' | 'fixed';
  readonly delayMs: number;
  readonly maxDelayMs: number;
}

export interface PoolConfig {
  readonly name: string;
  /** Runs of the pool at once on one node. */
  readonly concurrency: number;
  /** Sum of the memory limits of the pool's runs on one node; undefined = no budget. */
  readonly memoryBytes?: number;
}

export interface RunletConfig {
  /** Absolute path of the file this was loaded from. */
  readonly file: string;
  readonly retention: { readonly runsPerTask: number };
  /** Sum of the memory limits of the runs one node runs at once; undefined = no budget. */
  readonly node: { readonly memoryBytes?: number };
  readonly pools: Readonly<Record<string, PoolConfig>>;
  readonly tasks: Readonly<Record<string, TaskConfig>>;
}
