import { DEFAULTS, defaultNote } from './defaults.js';
import { z } from 'zod';
import { got } from './describe.js';
import {
  boolField,
  commandField,
  countField,
  cpusField,
  durationField,
  envField,
  imageField,
  memoryField,
  networkField,
  overlapField,
  scheduleField,
  sizeField,
  textField,
  timezoneField,
  userField,
  wholeField,
} from './fields.js';
import { withHints } from './editor-hints.js';
import { RETRY_KEYS, retriesField } from './retries.js';
import { afterField, mongoField, queueField, TRIGGER_KEYS, webhookField } from './triggers.js';
import { httpField, HTTP_KEYS } from './http.js';
import { ALERT_KEYS, alertsField, STUCK_KEYS, stuckField } from './ops.js';

/**
 * The shape of runlet.yaml after `${VAR}` interpolation, in one place. Fields are checked
 * one by one here; what depends on several fields or on the disk (a task needs some image,
 * `build:` must hold a Dockerfile, task names) is checked in resolve.ts, and defaults are
 * merged there too, so this schema doubles as the editor's JSON Schema without lying.
 */

/** A map level may be left empty in YAML (`env:` with nothing under it) and means {}. */
function mapError(what: string) {
  return (iss: { code?: string; input?: unknown }) => {
    if (iss.code !== 'invalid_type') return undefined;
    return `expected ${what}, got ${got(iss.input)}`;
  };
}

const limits = {
  memory: (d: string) => memoryField(`Hard memory limit, without swap: the container is OOM-killed above it. ${d}`),
  cpus: (d: string) => cpusField(`CPU share (Docker --cpus), more than 0 and at most 64. ${d}`),
  timeout: (d: string) =>
    durationField(`Longest a run may take; then SIGTERM, and SIGKILL after killGrace. At least 1s. ${d}`, 1_000, '1s'),
  killGrace: (d: string) => durationField(`Time between SIGTERM and SIGKILL when a run times out. ${d}`, 0, '0s'),
  pids: (d: string) => countField(`Most processes the container may have (fork-bomb guard). ${d}`, 'processes', 256),
  timezone: (d: string) => timezoneField(`IANA time zone the schedule is read in. ${d}`),
  user: (d: string) =>
    userField(
      `User (and group) the program runs as, as docker run --user (the image's own USER is not used). "root" runs it as root: the explicit opt-out. ${d}`,
    ),
  maxPayload: (d: string) => sizeField(`Largest payload a run of this task accepts; larger ones are refused (413), never truncated. ${d}`),
  readOnly: (d: string) => boolField(`Read-only root filesystem; /tmp (a 64m tmpfs) and /runlet stay writable. false opts out. ${d}`),
  network: (d: string) => networkField(`"none" (no network), "bridge" (Docker's default) or a named Docker network. ${d}`),
};

export const DefaultsSchema = z
  .strictObject(
    {
      image: imageField('Image for tasks that set neither `image:` nor `build:`. No built-in default.').optional(),
      memory: withHints(limits.memory(defaultNote('memory')).optional(), { default: DEFAULTS.memory }),
      cpus: withHints(limits.cpus(defaultNote('cpus')).optional(), { default: DEFAULTS.cpus }),
      timeout: withHints(limits.timeout(defaultNote('timeout')).optional(), { default: DEFAULTS.timeout }),
      killGrace: withHints(limits.killGrace(defaultNote('killGrace')).optional(), { default: DEFAULTS.killGrace }),
      timezone: withHints(limits.timezone(defaultNote('timezone')).optional(), { default: DEFAULTS.timezone }),
      pids: withHints(limits.pids(defaultNote('pids')).optional(), { default: DEFAULTS.pids }),
      maxPayload: withHints(limits.maxPayload(defaultNote('maxPayload')).optional(), { default: DEFAULTS.maxPayload }),
      user: withHints(limits.user(defaultNote('user', ' (nobody)')).optional(), { default: DEFAULTS.user }),
      readOnly: withHints(limits.readOnly(defaultNote('readOnly')).optional(), { default: DEFAULTS.readOnly }),
      network: withHints(limits.network(defaultNote('network')).optional(), { default: DEFAULTS.network }),
      retries: retriesField('built-in').optional(),
    },
    { error: mapError('a map of default task settings') },
  )
  .nullable()
  .meta({ description: 'Settings every task gets unless it sets its own.' });

export const TaskSchema = z
  .strictObject(
    {
      description: textField('What the task does, shown in the dashboard and API.').optional(),
      image: imageField('Image to run. With `build:`, the tag to build it as.').optional(),
      build: textField(
        'Directory with a Dockerfile, relative to this file, built at start-up. Tagged runlet-build/<task>:latest unless `image:` is set.',
      ).optional(),
      command: commandField("Program and arguments, as a list; no shell. Leave out to use the image's CMD.").optional(),
      env: envField('Environment variables. Numbers and booleans become strings. `${VAR}` reads the daemon environment.').optional(),
      secrets: envField(
        "Environment variables whose values are never shown: not by the API, the dashboard, `runlet validate` nor alerts, and masked as *** in the run's logs. Usually `${VAR}`.",
      ).optional(),
      schedule: scheduleField(
        'Cron expression: 5 fields, 6 with seconds first, or @hourly/@daily/@weekly/@monthly/@yearly. Leave out for no schedule.',
      ).optional(),
      timezone: limits.timezone('Defaults to defaults.timezone.').optional(),
      memory: limits.memory('Defaults to defaults.memory.').optional(),
      cpus: limits.cpus('Defaults to defaults.cpus.').optional(),
      timeout: limits.timeout('Defaults to defaults.timeout.').optional(),
      killGrace: limits.killGrace('Defaults to defaults.killGrace.').optional(),
      pids: limits.pids('Defaults to defaults.pids.').optional(),
      maxPayload: limits.maxPayload('Defaults to defaults.maxPayload.').optional(),
      user: limits.user('Defaults to defaults.user.').optional(),
      readOnly: limits.readOnly('Defaults to defaults.readOnly.').optional(),
      network: limits.network('Defaults to defaults.network.').optional(),
      pool: textField('Pool whose per-node concurrency and memory budget this task shares. Default: the pool named default.').optional(),
      concurrency: withHints(
        countField(`Runs of this task at once, across all daemons (cluster-wide). ${defaultNote('concurrency')}`, 'runs', 1).optional(),
        { default: DEFAULTS.concurrency },
      ),
      overlap: withHints(
        overlapField(
          'When the task is at its concurrency: queue (wait, up to maxQueued), bufferOne, skip, replace (cancel the oldest running run) or allow (ignore the task limit). ' +
            defaultNote('overlap'),
        ).optional(),
        { default: DEFAULTS.overlap },
      ),
      maxQueued: withHints(
        countField(
          `Most runs waiting with overlap: queue; beyond it new runs are skipped. ${defaultNote('maxQueued')}`,
          'runs',
          100,
        ).optional(),
        {
          default: DEFAULTS.maxQueued,
        },
      ),
      jitter: withHints(durationField('Random delay of up to this much per cron tick, to spread load. Default 0.', 0, '0s').optional(), {
        default: DEFAULTS.jitter,
      }),
      suspended: withHints(
        boolField(
          'true: the schedule keeps ticking but each tick is recorded as skipped, like Kubernetes suspend. ' + defaultNote('suspended'),
        ).optional(),
        { default: DEFAULTS.suspended },
      ),
      catchup: withHints(
        durationField(
          'Ticks missed while no daemon ran are run once at start-up if the latest is at most this old; older ones are recorded as skipped. Default 0 (none).',
          0,
          '0s',
        ).optional(),
        { default: DEFAULTS.catchup },
      ),
      retries: retriesField('defaults').optional(),
      webhook: webhookField().optional(),
      queue: queueField().optional(),
      mongo: mongoField().optional(),
      after: afterField().optional(),
      http: httpField().optional(),
      warm: withHints(
        wholeField(
          'Containers of this task started ahead of its triggers, each waiting to run one event. Default 0 (none).',
          'containers',
          2,
        ).optional(),
        { default: 0 },
      ),
      warmIdle: durationField(
        `After a request, one instance of a function (two with reuse) stays warm this long, then goes (scale to zero); 0 turns it off. Default ${DEFAULTS.warmIdle} for tasks with http:, 0 for others.`,
        0,
        '0s',
      ).optional(),
      reuse: withHints(
        boolField(
          'true: one instance serves several runs one after another (never two at once) through the AWS Lambda Runtime API; state may leak between runs. Default false.',
        ).optional(),
        { default: false },
      ),
    },
    { error: mapError('a map of task settings') },
  )
  .nullable()
  .meta({ description: 'One task; its name is the key.' });

export const NodeSchema = z
  .strictObject(
    {
      memory: memoryField(
        'Memory budget of this node: the sum of the memory limits of the runs it runs at once. No budget when unset.',
      ).optional(),
    },
    { error: mapError('a map like { memory: 8g }') },
  )
  .nullable()
  .meta({ description: 'Limits of the node (one daemon and its Docker engine).' });

export const PoolSchema = z
  .strictObject(
    {
      concurrency: withHints(countField(`Runs of this pool at once on one node. ${defaultNote('poolConcurrency')}`, 'runs', 8).optional(), {
        default: DEFAULTS.poolConcurrency,
      }),
      memory: memoryField("Memory budget of this pool on one node (sum of its runs' memory limits). No budget when unset.").optional(),
    },
    { error: mapError('a map like { concurrency: 2, memory: 4g }') },
  )
  .nullable()
  .meta({ description: 'A pool: per-node concurrency and memory budget shared by its tasks.' });

export const RetentionSchema = z
  .strictObject(
    {
      runs: withHints(
        countField(`Finished runs kept per task; older ones are deleted. ${defaultNote('retentionRuns')}`, 'runs', 100).optional(),
        {
          default: DEFAULTS.retentionRuns,
        },
      ),
      maxAge: durationField(
        'Finished runs created longer ago than this are deleted too, whatever their count, also for tasks that no longer run. Default: none (kept by count only).',
        60_000,
        '1m',
      ).optional(),
    },
    { error: mapError('a map like { runs: 100, maxAge: 30d }') },
  )
  .nullable()
  .meta({ description: 'How much run history to keep.' });

/** Task names become Docker labels and Redis keys, hence the narrow alphabet. */
export const TASK_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const ConfigSchema = z
  .strictObject(
    {
      defaults: DefaultsSchema.optional(),
      node: NodeSchema.optional(),
      pools: z
        .record(z.string(), PoolSchema, { error: mapError('a map of pool names to { concurrency, memory }') })
        .nullable()
        .optional()
        .meta({
          description: `Pools by name. Tasks without \`pool:\` share the pool named ${DEFAULTS.pool} (concurrency ${DEFAULTS.poolConcurrency}, no memory budget, unless defined here).`,
        }),
      tasks: z
        .record(z.string(), TaskSchema, {
          error: (iss: { code?: string; input?: unknown }) => {
            if (iss.code !== 'invalid_type') return undefined;
            if (iss.input === undefined) return 'required key is missing: add a tasks: map (write tasks: {} for none yet)';
            return `expected a map of task names to task settings, got ${got(iss.input)}`;
          },
        })
        .nullable()
        .meta({ description: 'The tasks to run, by name.', propertyNames: { pattern: TASK_NAME.source } }),
      retention: RetentionSchema.optional(),
      stuck: stuckField().optional(),
      alerts: alertsField().optional(),
    },
    {
      error: (iss: { code?: string; input?: unknown }) => {
        if (iss.code !== 'invalid_type') return undefined;
        const what = iss.input === undefined || iss.input === null ? 'nothing (the file is empty)' : got(iss.input);
        return `expected a map with a tasks: key at the top level, got ${what}`;
      },
    },
  )
  .meta({ title: 'runlet configuration', description: 'runlet.yaml: tasks run in Docker containers, on a schedule or on demand.' });

export type RawConfig = z.output<typeof ConfigSchema>;
export type RawTask = NonNullable<z.output<typeof TaskSchema>>;

/** The keys allowed in the map at `path`, for "did you mean" on unknown keys. */
export function allowedKeysAt(path: readonly PropertyKey[]): readonly string[] {
  if (path.length === 0) return Object.keys(ConfigSchema.shape);
  if (path.length === 1 && path[0] === 'defaults') return Object.keys(DefaultsSchema.unwrap().shape);
  if (path.length === 1 && path[0] === 'retention') return Object.keys(RetentionSchema.unwrap().shape);
  if (path.length === 1 && path[0] === 'node') return Object.keys(NodeSchema.unwrap().shape);
  if (path.length === 1 && path[0] === 'stuck') return STUCK_KEYS;
  if (path.length === 2 && path[0] === 'alerts') return ALERT_KEYS;
  if (path.length === 2 && path[0] === 'pools') return Object.keys(PoolSchema.unwrap().shape);
  if (path.length === 2 && path[0] === 'tasks') return Object.keys(TaskSchema.unwrap().shape);
  if (
    path.length >= 3 &&
    path[0] === 'tasks' &&
    isTriggerKey(path[2]) &&
    (path.length === 3 || (path[2] === 'after' && path.length === 4))
  ) {
    return TRIGGER_KEYS[path[2]];
  }
  if (path.length === 3 && path[0] === 'tasks' && path[2] === 'http') return HTTP_KEYS;
  if (path.at(-1) === 'retries' && ((path.length === 2 && path[0] === 'defaults') || (path.length === 3 && path[0] === 'tasks')))
    return RETRY_KEYS;
  return [];
}

const isTriggerKey = (key: PropertyKey): key is keyof typeof TRIGGER_KEYS => typeof key === 'string' && Object.hasOwn(TRIGGER_KEYS, key);
