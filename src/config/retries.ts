import { z } from 'zod';
import { formatDuration } from '../lib/format.js';
import { got, isMap } from './describe.js';
import { withHints } from './editor-hints.js';
import { choiceField, countField, durationField } from './fields.js';
import type { RetryPolicy } from './types.js';
import { parseDurationMs } from './units.js';
import type { KeyPath } from './yaml-source.js';

/**
 * `retries: { attempts, backoff, delay, maxDelay }`, in `defaults:` and on a task: the
 * schema, the merge (task key → defaults key → built-in, key by key) and the one check
 * that spans keys (delay against maxDelay, possibly set at different levels).
 */

export const BACKOFFS = ['exponential', 'fixed'] as const;

export const BUILTIN_RETRIES = { attempts: 1, backoff: 'exponential', delay: '30s', maxDelay: '10m' } as const;

const MAP_EXAMPLE = '{ attempts: 3, backoff: exponential, delay: 30s }';

function mapMessage(iss: { code?: string; input?: unknown }): string | undefined {
  if (iss.code !== 'invalid_type') return undefined;
  // `retries: 3` is ambiguous (3 retries, or 3 runs in all?): say what attempts counts.
  const hint =
    typeof iss.input === 'number' || (typeof iss.input === 'string' && /^\s*\d+\s*$/.test(iss.input))
      ? ` (attempts counts the first run too: { attempts: ${Number(iss.input) + 1} } is one run and ${Number(iss.input)} retries)`
      : '';
  return `expected a map like ${MAP_EXAMPLE}, got ${got(iss.input)}${hint}`;
}

/** The `retries:` map; `inherit` says where a key left out comes from, for the editor. */
export function retriesField(inherit: 'built-in' | 'defaults') {
  const from = (key: string, builtin: string) => (inherit === 'defaults' ? `Defaults to defaults.retries.${key}.` : `Default ${builtin}.`);
  const hint = <T extends z.core.$ZodType>(schema: T, value: unknown) =>
    inherit === 'built-in' ? withHints(schema, { default: value }) : schema;
  const schema = z
    .strictObject(
      {
        attempts: hint(
          countField(`Runs in all, the first included: 1 = no retry. ${from('attempts', '1')}`, 'attempts', 3).optional(),
          BUILTIN_RETRIES.attempts,
        ),
        backoff: hint(
          choiceField(
            `How the wait grows between attempts: exponential (delay × 2^(n-1)) or fixed (delay). ${from('backoff', 'exponential')}`,
            BACKOFFS,
          ).optional(),
          BUILTIN_RETRIES.backoff,
        ),
        delay: hint(
          durationField(`Wait before the first retry (jittered: up to 20% less). ${from('delay', '30s')}`, 0, '0s').optional(),
          BUILTIN_RETRIES.delay,
        ),
        maxDelay: hint(
          durationField(`Longest wait between attempts. ${from('maxDelay', '10m')}`, 0, '0s').optional(),
          BUILTIN_RETRIES.maxDelay,
        ),
      },
      { error: mapMessage },
    )
    .nullable()
    .meta({ description: 'Run a failed, timed-out, OOM-killed or lost run again, with a growing wait in between.' });
  return withHints(schema, { examples: [{ attempts: 3, backoff: 'exponential', delay: '30s', maxDelay: '10m' }] });
}

export const RETRY_KEYS: readonly string[] = Object.keys(retriesField('built-in').unwrap().shape);

type RawRetries = { attempts?: number; backoff?: (typeof BACKOFFS)[number]; delay?: number; maxDelay?: number } | null | undefined;

/** The task's policy: each key from the task, else `defaults.retries`, else the built-in. */
export function resolveRetries(task: RawRetries, defaults: RawRetries): RetryPolicy {
  return {
    attempts: task?.attempts ?? defaults?.attempts ?? BUILTIN_RETRIES.attempts,
    backoff: task?.backoff ?? defaults?.backoff ?? BUILTIN_RETRIES.backoff,
    delayMs: task?.delay ?? defaults?.delay ?? parseDurationMs(BUILTIN_RETRIES.delay)!,
    maxDelayMs: task?.maxDelay ?? defaults?.maxDelay ?? parseDurationMs(BUILTIN_RETRIES.maxDelay)!,
  };
}

// --- the cross-key check, on the data as parsed ---------------------------------------

function durationOf(v: unknown): number | undefined {
  if (typeof v === 'number') return v === 0 ? 0 : undefined;
  return typeof v === 'string' ? parseDurationMs(v) : undefined;
}

interface Level {
  readonly path: KeyPath;
  readonly retries: Record<string, unknown>;
  /** Where a key this level leaves out comes from, as the message names it. */
  readonly parent?: { readonly retries: Record<string, unknown>; readonly name: string };
}

/**
 * A delay longer than maxDelay would be cut to maxDelay on every retry, which is surely not
 * what was meant; reported where it is set (a task's delay against the default maxDelay
 * is the task's problem). Values the schema rejects are left to its messages.
 */
export function retryDelayFindings(defaults: unknown, tasks: Record<string, unknown>): { path: KeyPath; at: 'value'; message: string }[] {
  const d = isMap(defaults) && isMap(defaults.retries) ? defaults.retries : {};
  const levels: Level[] = [{ path: ['defaults', 'retries'], retries: d }];
  for (const [name, task] of Object.entries(tasks)) {
    if (isMap(task) && isMap(task.retries))
      levels.push({ path: ['tasks', name, 'retries'], retries: task.retries, parent: { retries: d, name: 'defaults.retries' } });
  }
  const findings: { path: KeyPath; at: 'value'; message: string }[] = [];
  for (const level of levels) {
    const own = level.retries;
    if (own.delay === undefined && own.maxDelay === undefined) continue;
    const pick = (key: 'delay' | 'maxDelay') => {
      if (own[key] !== undefined) return { ms: durationOf(own[key]), origin: '' };
      if (level.parent && level.parent.retries[key] !== undefined)
        return { ms: durationOf(level.parent.retries[key]), origin: ` (from ${level.parent.name})` };
      return { ms: parseDurationMs(BUILTIN_RETRIES[key]), origin: ' (the default)' };
    };
    const delay = pick('delay');
    const max = pick('maxDelay');
    if (delay.ms === undefined || max.ms === undefined || delay.ms <= max.ms) continue;
    const at = own.delay !== undefined ? 'delay' : 'maxDelay';
    findings.push({
      path: [...level.path, at],
      at: 'value',
      message:
        `delay ${formatDuration(delay.ms)}${delay.origin} is longer than maxDelay ${formatDuration(max.ms)}${max.origin}, ` +
        `so every retry would wait ${formatDuration(max.ms)}: raise maxDelay to at least ${formatDuration(delay.ms)} or lower delay`,
    });
  }
  return findings;
}
