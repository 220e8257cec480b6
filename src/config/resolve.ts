import { DEFAULTS } from './defaults.js';
import type { Finding } from './errors.js';
import fs from 'node:fs';
import path from 'node:path';
import { got, isMap } from './describe.js';
import { afterFindings } from './after-cycles.js';
import { resolveRetries, retryDelayFindings } from './retries.js';
import { TASK_NAME } from './schema.js';
import type { RawConfig } from './schema.js';
import { queueClashFindings, resolveAfter, resolveMongo, resolveQueue, resolveWebhook, webhookFindings } from './triggers.js';
import type { Payload } from './triggers.js';
import type { PoolConfig, RunletConfig, TaskConfig } from './types.js';
import { closest } from './did-you-mean.js';
import { alertFindings, resolveAlerts, resolveStuck } from './ops.js';
import { httpFindings, resolveHttp, routeClashFindings } from './http.js';
import { formatBytes, parseDurationMs, parseSizeBytes } from './units.js';
import type { KeyPath } from './yaml-source.js';

/**
 * What the per-field schema can't see: checks that span fields or touch the disk, and the
 * merge of task → defaults → built-ins into the final, unit-named TaskConfig.
 */

/** A problem found on the data, to be placed on the YAML node at `path`. */
/**
 * Runs on the data as parsed, even when the schema failed elsewhere, so one pass shows
 * every problem; it reads fields defensively and leaves type errors to the schema.
 */
export function crossCheck(raw: unknown, configDir: string): Finding[] {
  const findings: Finding[] = [];
  if (!isMap(raw) || !isMap(raw.tasks)) return findings;
  const defaults = isMap(raw.defaults) ? raw.defaults : {};
  for (const [name, task] of Object.entries(raw.tasks)) {
    const at: KeyPath = ['tasks', name];
    if (!TASK_NAME.test(name)) {
      findings.push({
        path: at,
        at: 'key',
        message:
          `invalid task name ${JSON.stringify(name)}: use 1 to 63 lowercase letters, digits, "-" or "_", ` +
          `starting with a letter or digit (it becomes a Docker label and a Redis key)`,
      });
    }
    const t = isMap(task) ? task : {};
    if (t.image == null && t.build == null && defaults.image == null) {
      findings.push({ path: at, at: 'key', message: 'no image: set `image:` or `build:` on the task, or `defaults.image`' });
    }
    if (typeof t.build === 'string') {
      const problem = buildDirProblem(t.build, configDir);
      if (problem) findings.push({ path: [...at, 'build'], at: 'value', message: problem });
    }
    findings.push(...admissionProblems(raw, name, t, defaults));
    findings.push(...webhookFindings(at, t, maxPayloadOf(t, defaults)));
    findings.push(...httpFindings(at, t, configDir));
    for (const field of ['env', 'secrets'] as const) {
      const vars = t[field];
      if (!isMap(vars)) continue;
      for (const key of Object.keys(vars)) {
        if (key === '' || /[=\0]/.test(key)) {
          findings.push({
            path: [...at, field, key],
            at: 'key',
            message: `invalid environment variable name ${got(key)}: a name can't be empty or contain "="`,
          });
        } else if (field === 'secrets' && isMap(t.env) && Object.hasOwn(t.env, key)) {
          // One value per name: which would win is a guess, and a wrong guess shows a secret.
          findings.push({ path: [...at, field, key], at: 'key', message: `${key} is set in both env: and secrets:; keep it in one` });
        }
      }
    }
  }
  findings.push(...retryDelayFindings(raw.defaults, raw.tasks));
  findings.push(...queueClashFindings(raw.tasks), ...afterFindings(raw.tasks), ...routeClashFindings(raw.tasks));
  findings.push(...alertFindings(raw));
  return findings;
}

/** The task's maxPayload as the merge will make it, and where it comes from. */
function maxPayloadOf(t: Record<string, unknown>, defaults: Record<string, unknown>): Payload {
  const own = sizeOf(t.maxPayload);
  if (own !== undefined) return { bytes: own, origin: '' };
  const inherited = sizeOf(defaults.maxPayload);
  if (inherited !== undefined) return { bytes: inherited, origin: ' (from defaults.maxPayload)' };
  return { bytes: DEFAULT_MAX_PAYLOAD_BYTES, origin: ' (the default)' };
}

function buildDirProblem(dir: string, configDir: string): string | undefined {
  const abs = path.resolve(configDir, dir);
  const shown = JSON.stringify(dir);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch {
    return `build directory ${shown} does not exist (looked for ${abs}; build: is relative to the config file's directory)`;
  }
  if (!stat.isDirectory()) return `build: must name a directory containing a Dockerfile, but ${abs} is a file`;
  if (!fs.existsSync(path.join(abs, 'Dockerfile'))) return `build directory ${shown} has no Dockerfile (looked in ${abs})`;
  return undefined;
}

/** The validated data, defaults merged in. Only called once every check passed. */
export function buildConfig(raw: RawConfig, file: string): RunletConfig {
  const configDir = path.dirname(file);
  const d = raw.defaults ?? {};
  // Built-ins are literals known to parse; `!` only states that.
  const base = {
    timezone: d.timezone ?? DEFAULTS.timezone,
    memoryBytes: d.memory ?? parseSizeBytes(DEFAULTS.memory)!,
    cpus: d.cpus ?? DEFAULTS.cpus,
    timeoutMs: d.timeout ?? parseDurationMs(DEFAULTS.timeout)!,
    killGraceMs: d.killGrace ?? parseDurationMs(DEFAULTS.killGrace)!,
    pids: d.pids ?? DEFAULTS.pids,
    maxPayloadBytes: d.maxPayload ?? DEFAULT_MAX_PAYLOAD_BYTES,
    user: d.user ?? DEFAULTS.user,
    readOnly: d.readOnly ?? DEFAULTS.readOnly,
    network: d.network ?? DEFAULTS.network,
  };
  const tasks: Record<string, TaskConfig> = {};
  for (const [name, rawTask] of Object.entries(raw.tasks ?? {})) {
    const t = rawTask ?? {};
    const build = t.build === undefined ? undefined : path.resolve(configDir, t.build);
    // crossCheck guarantees one of the three is set.
    const image = t.image ?? (build ? `runlet-build/${name}:latest` : d.image!);
    const maxPayloadBytes = t.maxPayload ?? base.maxPayloadBytes;
    tasks[name] = {
      name,
      ...(t.description !== undefined && { description: t.description }),
      image,
      ...(build !== undefined && { build }),
      ...(t.command !== undefined && { command: t.command }),
      env: t.env ?? {},
      secrets: t.secrets ?? {},
      ...(t.schedule !== undefined && { schedule: t.schedule }),
      timezone: t.timezone ?? base.timezone,
      memoryBytes: t.memory ?? base.memoryBytes,
      cpus: t.cpus ?? base.cpus,
      timeoutMs: t.timeout ?? base.timeoutMs,
      killGraceMs: t.killGrace ?? base.killGraceMs,
      pids: t.pids ?? base.pids,
      maxPayloadBytes,
      user: t.user ?? base.user,
      readOnly: t.readOnly ?? base.readOnly,
      network: t.network ?? base.network,
      suspended: t.suspended ?? DEFAULTS.suspended,
      catchupMs: t.catchup ?? parseDurationMs(DEFAULTS.catchup)!,
      pool: t.pool ?? DEFAULT_POOL,
      concurrency: t.concurrency ?? DEFAULTS.concurrency,
      overlap: t.overlap ?? DEFAULTS.overlap,
      maxQueued: t.maxQueued ?? DEFAULTS.maxQueued,
      jitterMs: t.jitter ?? parseDurationMs(DEFAULTS.jitter)!,
      retries: resolveRetries(t.retries, d.retries),
      // crossCheck refuses a webhook: with nothing under it (no secret), so null never gets here.
      ...(t.webhook !== undefined && { webhook: resolveWebhook(t.webhook, maxPayloadBytes) }),
      ...(t.queue !== undefined && { queue: resolveQueue(t.queue) }),
      ...(t.mongo !== undefined && { mongo: resolveMongo(t.mongo) }),
      ...(t.after !== undefined && { after: resolveAfter(t.after) }),
      ...(t.http !== undefined && { http: resolveHttp(t.http, configDir) }),
      warm: t.warm ?? 0,
      warmIdleMs: t.warmIdle ?? (t.http !== undefined ? parseDurationMs(DEFAULTS.warmIdle)! : 0),
      reuse: t.reuse ?? false,
    };
  }
  return {
    file,
    retention: {
      runsPerTask: raw.retention?.runs ?? DEFAULTS.retentionRuns,
      ...(raw.retention?.maxAge !== undefined && { maxAgeMs: raw.retention.maxAge }),
    },
    node: raw.node?.memory !== undefined ? { memoryBytes: raw.node.memory } : {},
    pools: buildPools(raw),
    tasks,
    stuck: resolveStuck(raw.stuck),
    alerts: resolveAlerts(raw.alerts),
  };
}

/** Tasks without `pool:` share this one; defining it under `pools:` overrides its limits. */
export const DEFAULT_POOL = DEFAULTS.pool;
const DEFAULT_POOL_CONCURRENCY = DEFAULTS.poolConcurrency;

function buildPools(raw: RawConfig): Record<string, PoolConfig> {
  const pools: Record<string, PoolConfig> = { [DEFAULT_POOL]: { name: DEFAULT_POOL, concurrency: DEFAULT_POOL_CONCURRENCY } };
  for (const [name, p] of Object.entries(raw.pools ?? {})) {
    pools[name] = {
      name,
      concurrency: p?.concurrency ?? DEFAULT_POOL_CONCURRENCY,
      ...(p?.memory !== undefined && { memoryBytes: p.memory }),
    };
  }
  return pools;
}

const sizeOf = (v: unknown): number | undefined => (typeof v === 'string' || typeof v === 'number' ? parseSizeBytes(v) : undefined);

/**
 * A run whose memory limit exceeds a budget it must fit in would wait forever; it is
 * refused here, where the user can fix it, instead.
 */
function admissionProblems(
  raw: Record<string, unknown>,
  name: string,
  t: Record<string, unknown>,
  defaults: Record<string, unknown>,
): Finding[] {
  const at: KeyPath = ['tasks', name];
  const pools = isMap(raw.pools) ? raw.pools : {};
  const poolName = typeof t.pool === 'string' ? t.pool : DEFAULT_POOL;
  if (poolName !== DEFAULT_POOL && !(poolName in pools)) {
    const hint = closest(poolName, Object.keys(pools));
    const known = [DEFAULT_POOL, ...Object.keys(pools)].join(', ');
    return [
      {
        path: [...at, 'pool'],
        at: 'value',
        message: `unknown pool ${got(poolName)}${hint ? ` (did you mean "${hint}"?)` : ''}; pools: ${known}`,
      },
    ];
  }
  const memory = sizeOf(t.memory) ?? sizeOf(defaults.memory) ?? parseSizeBytes(DEFAULTS.memory)!;
  const where: KeyPath = t.memory !== undefined ? [...at, 'memory'] : at;
  const whereAt = t.memory !== undefined ? 'value' : 'key';
  const pool = isMap(pools[poolName]) ? pools[poolName] : {};
  const poolBudget = sizeOf(pool.memory);
  if (poolBudget !== undefined && memory > poolBudget) {
    return [
      {
        path: where,
        at: whereAt,
        message: `memory limit ${formatBytes(memory)} is more than pool "${poolName}"'s budget of ${formatBytes(poolBudget)}: the task could never start`,
      },
    ];
  }
  const nodeBudget = isMap(raw.node) ? sizeOf(raw.node.memory) : undefined;
  if (nodeBudget !== undefined && memory > nodeBudget) {
    return [
      {
        path: where,
        at: whereAt,
        message: `memory limit ${formatBytes(memory)} is more than the node's budget of ${formatBytes(nodeBudget)} (node.memory): the task could never start`,
      },
    ];
  }
  return [];
}

/** 1 MiB: a payload is an event, not a data set (put data in S3 and send its key). */
export const DEFAULT_MAX_PAYLOAD_BYTES = parseSizeBytes(DEFAULTS.maxPayload)!;
