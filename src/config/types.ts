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
  /**
   * Environment variables whose values are never shown (API, dashboard, validate, alerts)
   * and are masked in the run's logs (runs/secret-mask.ts). Never stored in a run record.
   */
  readonly secrets: Readonly<Record<string, string>>;
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
  /** docker run --user: "65534:65534" (nobody) unless the task chose another; "root" is the explicit opt-out. */
  readonly user: string;
  /** Read-only root filesystem (default true); false is the opt-out. */
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
  /** `POST /hooks/<task>` makes a run. */
  readonly webhook?: WebhookConfig;
  /** Jobs of an outside BullMQ queue make runs. */
  readonly queue?: QueueTriggerConfig;
  /** A MongoDB change stream makes runs. */
  readonly mongo?: MongoTriggerConfig;
  /** Runs of other tasks ending in given statuses make runs (chaining). */
  readonly after?: readonly AfterTrigger[];
  /** Served as an HTTP function on the functions listener: each request is one run. */
  readonly http?: HttpFunctionConfig;
  /** Containers started ahead of triggers, waiting for their run (0: none). */
  readonly warm: number;
  /** After a run, keep one instance warm this long (scale to zero after); 0: only `warm`. */
  readonly warmIdleMs: number;
  /** One instance serves several runs one after another (the Lambda Runtime API). */
  readonly reuse: boolean;
}

/** "GET /users/:id": `key` is the route as written, normalised (upper-case method). */
export interface FunctionRoute {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS' | 'ANY';
  readonly path: string;
  readonly key: string;
}

export interface FunctionCors {
  readonly origins: readonly string[];
  /** Undefined: the methods of the function's routes. */
  readonly methods?: readonly string[];
  readonly headers: readonly string[];
  readonly maxAgeMs: number;
}

export interface HttpFunctionConfig {
  readonly routes: readonly FunctionRoute[];
  readonly auth: 'none' | 'bearer' | 'apiKeys';
  /** auth: bearer: the token. */
  readonly secret?: string;
  /** auth: apiKeys: consumer name → key (from apiKeys or apiKeysFile). */
  readonly apiKeys?: Readonly<Record<string, string>>;
  /** Absolute path, when the keys came from a file. */
  readonly apiKeysFile?: string;
  /** auth: apiKeys: requests per consumer per period, cluster-wide. */
  readonly rateLimitPerKey?: { readonly count: number; readonly perMs: number };
  readonly cors?: FunctionCors;
  /** The request's deadline: queued and running together. */
  readonly timeoutMs: number;
}

/** How a webhook request proves it is from the sender that knows the secret. */
export type WebhookSignature = 'hmac-sha256' | 'github' | 'bearer' | 'standard-webhooks';

export interface WebhookConfig {
  /**
   * `none` only when written explicitly (`auth: none`); otherwise `signature` with `secret`.
   * A webhook without a secret is refused at validation unless auth: none says it is meant.
   */
  readonly auth: 'signature' | 'none';
  /** Set when auth is `signature`. */
  readonly secret?: string;
  readonly signature: WebhookSignature;
  /** hmac-sha256, standard-webhooks: a signature whose timestamp is further than this from now is refused. */
  readonly toleranceMs: number;
  /**
   * What makes two requests without an event id one event (bearer and auth: none; every
   * signed scheme has a signed id). id: nothing, each request is its own event. body:
   * identical bodies within `dedupeWindowMs` of the first.
   */
  readonly dedupe: 'id' | 'body';
  /** With dedupe: body, how long a body's first run answers for identical bodies. */
  readonly dedupeWindowMs: number;
  /** accepted: 202 once queued; result: wait for the run and answer with its output. */
  readonly respond: 'accepted' | 'result';
  /** With respond: result, how long to wait for the run before answering 504 with its id. */
  readonly resultTimeoutMs: number;
  /** Largest request body; larger ones get 413 (default: the task's maxPayload). */
  readonly maxBodyBytes: number;
  /** At most `count` accepted requests per `perMs`, cluster-wide; more get 429. */
  readonly rateLimit?: { readonly count: number; readonly perMs: number };
  /** Request headers (lowercase) passed to the run besides the built-in allow-list. */
  readonly headers: readonly string[];
}

export interface QueueTriggerConfig {
  /** The BullMQ queue name producers add jobs to. */
  readonly name: string;
  /** The Redis the queue lives in; undefined = runlet's own. */
  readonly redisUrl?: string;
  /** BullMQ key prefix of the queue (BullMQ's default is "bull"). */
  readonly prefix: string;
  /** Source jobs held at once by one daemon while their runs are recorded or running. */
  readonly concurrency: number;
}

export type MongoOperation = 'insert' | 'update' | 'replace' | 'delete';

export interface MongoTriggerConfig {
  /** undefined when the URL interpolated to nothing (`${MONGO_URL:-}`): the stream is reported as not configured. */
  readonly url?: string;
  readonly db: string;
  readonly collection: string;
  readonly operations: readonly MongoOperation[];
  /** An extra $match stage on the change events. */
  readonly match?: Readonly<Record<string, unknown>>;
  /** updateLookup: update events carry the document as it is now. */
  readonly fullDocument: 'default' | 'updateLookup';
}

export interface AfterTrigger {
  readonly task: string;
  /** The statuses of the named task's runs that trigger this one (default: succeeded). */
  readonly status: readonly string[];
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
  /** maxAgeMs: finished runs created longer ago are deleted too; undefined = by count only. */
  readonly retention: { readonly runsPerTask: number; readonly maxAgeMs?: number };
  /** Sum of the memory limits of the runs one node runs at once; undefined = no budget. */
  readonly node: { readonly memoryBytes?: number };
  readonly pools: Readonly<Record<string, PoolConfig>>;
  readonly tasks: Readonly<Record<string, TaskConfig>>;
  /** When a waiting run counts as stuck (GET /api/stuck, stuck alerts). */
  readonly stuck: { readonly queuedMs: number };
  /** Where failures and stuck runs are posted (config/ops.ts). */
  readonly alerts: readonly AlertRule[];
}

/** What an alert rule fires on: a run's status, `dead` (no attempt left), or `stuck`. */
export type AlertEvent = 'failed' | 'timed_out' | 'oom_killed' | 'lost' | 'dead' | 'stuck' | 'cancelled' | 'succeeded';

export interface AlertRule {
  /** http(s) URL the JSON is POSTed to (a Slack incoming webhook works as is). */
  readonly url: string;
  readonly on: readonly AlertEvent[];
  /** Only these tasks' runs; undefined: every task. */
  readonly tasks?: readonly string[];
  /** Per POST. */
  readonly timeoutMs: number;
  /** Attempts in all, the first included. */
  readonly retries: number;
}
