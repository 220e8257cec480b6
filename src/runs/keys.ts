/** Every Redis key runlet writes, in one place, so a reader can see the whole layout. */
export const PREFIX = 'runlet';

const RUN = `${PREFIX}:run:`;
/** A run's other keys are its own key plus one of these; deleting a run deletes them all. */
const RUN_PARTS = {
  transitions: ':transitions',
  logs: ':logs',
  output: ':output',
  attempts: ':attempts',
  payload: ':payload',
} as const;
const TASK_RUNS: readonly [string, string] = [`${PREFIX}:task:`, ':runs'];

export const keys = {
  run: (id: string) => `${RUN}${id}`,
  transitions: (id: string) => `${RUN}${id}${RUN_PARTS.transitions}`,
  logs: (id: string) => `${RUN}${id}${RUN_PARTS.logs}`,
  /** hash { text, error }: what the task wrote to /runlet/output.json. */
  output: (id: string) => `${RUN}${id}${RUN_PARTS.output}`,
  /**
   * string: the JSON text of the run's payload (absent: none). Apart from the hash, like the
   * output, so that listings, the status page and the stuck scan never load it: runs with
   * 1 MiB payloads would make each of those read megabytes per run.
   */
  payload: (id: string) => `${RUN}${id}${RUN_PARTS.payload}`,
  /** list of JSON AttemptRecords, one per ended attempt, oldest first. */
  attempts: (id: string) => `${RUN}${id}${RUN_PARTS.attempts}`,
  /** zset runId → createdAt, all runs. */
  allRuns: () => `${PREFIX}:runs`,
  /** zset runId → createdAt, one task's runs (retention trims this). */
  taskRuns: (task: string) => `${TASK_RUNS[0]}${task}${TASK_RUNS[1]}`,
  /**
   * The parts of the keys above, for the retention scripts: they learn run ids (and tasks)
   * inside Redis, from an index, so they join these parts themselves. Passed as arguments
   * rather than spelled in Lua, so this file stays the one place the layout is written.
   */
  runPrefix: () => RUN,
  runPartSuffixes: (): readonly string[] => Object.values(RUN_PARTS),
  taskRunsAffixes: () => TASK_RUNS,
  /** string → runId; the same dedupe key never makes two runs. */
  dedupe: (dedupeKey: string) => `${PREFIX}:dedupe:${dedupeKey}`,
  /**
   * stream of { run, task, status }: one entry each time a run reaches a terminal status,
   * written by the same Lua script that records the status. Waiters (respond: result,
   * queue triggers) tail it; chaining reads it with a consumer group.
   */
  ended: () => `${PREFIX}:ended`,
  /** stream of { at, who, role, action, target, run? }: who did what on the ops API, capped (runs/audit.ts). */
  audit: () => `${PREFIX}:audit`,
  /** zset runId → createdAt: recorded runs whose queue job is not yet confirmed. */
  outbox: () => `${PREFIX}:outbox`,
  /** The latest cron tick (epoch ms) claimed for a task; catch-up reads it. */
  cronLast: (task: string) => `${PREFIX}:cron:${task}:last`,
  /** set of task names paused from the API or CLI. */
  paused: () => `${PREFIX}:paused`,
  /**
   * hash task → epoch ms of its latest pause or resume: which of two changes is newer, when a
   * daemon puts back pauses Redis lost (dispatch/pause.ts).
   */
  pausedAt: () => `${PREFIX}:paused:at`,
  /** Heartbeat of one live daemon process (expires when it dies). */
  daemon: (daemonId: string) => `${PREFIX}:daemon:${daemonId}`,
  /**
   * hash node name → JSON of that node's latest heartbeat (dispatch/identity.ts): what a node
   * ran and when it was last seen, kept after its heartbeat key expired so the ops API can
   * show it as gone; ops/nodes.ts drops entries older than its retention.
   */
  nodesSeen: () => `${PREFIX}:nodes`,
  /** A random id for this Redis, so containers of another cluster on one engine are left alone. */
  clusterId: () => `${PREFIX}:cluster-id`,
  /**
   * string: the cluster id, written at start and checked every few seconds (runs/epoch.ts).
   * Its absence means Redis came back empty (flushed, failed over to an empty replica,
   * restarted without its append-only file) and what the daemons set once must be set again.
   */
  alive: () => `${PREFIX}:epoch`,
  /**
   * integer, INCR'd before each WAIT for a replica (lib/replicas.ts): WAIT covers the writes
   * of the connection that asks, so the asking connection makes one of its own first.
   */
  replicaAck: () => `${PREFIX}:replica-ack`,
  /**
   * pub/sub channel of a running run's output (runs/log-stream.ts): chunks as the engine
   * streams them, and a notice each time the stored tail is rewritten.
   */
  logChannel: (runId: string) => `${PREFIX}:logs:${runId}`,
  /** hash `<task>:cs|gbs|runs|mem` → totals of one UTC day (runs/daily-usage.ts), expiring after ~400 days. */
  usageDay: (day: string) => `${PREFIX}:usage:${day}`,
  /** hash task → the first UTC day a daemon ran with it configured (for the always-on comparison). */
  usageSince: () => `${PREFIX}:usage:since`,
} as const;

/**
 * pub/sub channel that tells live views (the dashboard's server-sent events, on any daemon)
 * that a run changed: "<run id> <status> <task>", published by the record scripts.
 * Fire-and-forget by design: a view that misses a message reloads from the records, which
 * stay the truth.
 */
export const CHANGES_CHANNEL = `${PREFIX}:changes`;

/** BullMQ's own keys live under this prefix; one queue per pool (dispatch/queues.ts). */
export const BULL_PREFIX = `${PREFIX}:bull`;

/** Daemons listen here; the one running the run's container stops it (dispatch/cancel.ts). */
export const CANCEL_CHANNEL = `${PREFIX}:cancel`;

/** The cluster-wide webhook rate limits (@fastify/rate-limit's Redis store) live under this prefix. */
export const HOOK_RATE_PREFIX = `${PREFIX}:hook-rate:`;

/** The cluster-wide per-API-key rate limits of HTTP functions (@fastify/rate-limit's Redis store). */
export const FN_RATE_PREFIX = `${PREFIX}:fn-rate:`;

/**
 * The task gate (dispatch/gate.ts): which runs hold one of their task's cluster-wide slots,
 * and which wait for one. Run queues are per pool; these keys are what makes a task's limit
 * hold across them.
 */
export const gateKeys = {
  /** zset run id → admitted at: the task's runs in progress (queued with a job, starting, running, between attempts). */
  slots: (task: string) => `${PREFIX}:task:${task}:slots`,
  /** zset run id → parked at: the task's queued runs waiting for a slot, with no queue job yet. */
  parked: (task: string) => `${PREFIX}:task:${task}:parked`,
  /** set of task names whose slots zset is not empty (the sweep reads only these). */
  slotted: () => `${PREFIX}:gate:slotted`,
  /** set of task names with parked runs. */
  parkedTasks: () => `${PREFIX}:gate:parked`,
} as const;

export const waitingKeys = {
  /** hash daemonId → JSON Block: why that daemon does not fetch the pool's runs now (ops/waiting.ts). */
  blocked: (pool: string) => `${PREFIX}:pool:${pool}:blocked`,
} as const;

export const alertKeys = {
  /** string sending:<daemon> | sent | failed: one alert of one rule (see AlertSender.claim). */
  marker: (rule: string, what: string) => `${PREFIX}:alert:${rule}:${what}`,
  /** string <daemon> with a PX expiry: the daemon scanning for stuck runs this period. */
  stuckScan: () => `${PREFIX}:alerts:stuck-scan`,
} as const;

/**
 * The MongoDB change-stream trigger's keys, one set per task: lease and fence (who may
 * consume), the resume token, and the state the ops API shows.
 */
export const streamKeys = {
  /** string `<holder daemon id>|<fence>` with a PX expiry: who may consume the stream now. */
  lease: (task: string) => `${PREFIX}:stream:${task}:lease`,
  /** integer, INCR'd on every acquisition and reset: the fencing token of the latest holder. */
  fence: (task: string) => `${PREFIX}:stream:${task}:fence`,
  /** string: the resume token (canonical EJSON) of the last change whose run is recorded. */
  token: (task: string) => `${PREFIX}:stream:${task}:token`,
  /**
   * hash: state (unconfigured|waiting|watching|error), holder, fence, error, errorKind,
   * errorAt, retryAt, lastEventAt, lastTokenAt, lastClusterTimeMs, eventsTotal, resetAt.
   * Times are epoch ms; '' means unset.
   */
  state: (task: string) => `${PREFIX}:stream:${task}:state`,
} as const;
