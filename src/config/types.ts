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
  /** docker run --user; undefined keeps the image's user. */
  readonly user?: string;
  readonly readOnly: boolean;
  /** "none", "bridge" or a named Docker network. */
  readonly network: string;
  /** Ticks are recorded as skipped instead of run (cluster-wide pause from the config). */
  readonly suspended: boolean;
  /** Missed ticks are run once at start-up if the latest is at most this old; 0 = never. */
  readonly catchupMs: number;
}

export interface RunletConfig {
  /** Absolute path of the file this was loaded from. */
  readonly file: string;
  readonly retention: { readonly runsPerTask: number };
  readonly tasks: Readonly<Record<string, TaskConfig>>;
}
