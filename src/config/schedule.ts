import { Cron } from 'croner';
import { closest } from './did-you-mean.js';

/**
 * The croner options the scheduler must use too: a pattern this file accepts has to mean
 * the same thing when it is armed. '5-or-6-parts' refuses croner's 7th (year) field.
 */
export const CRON_MODE = '5-or-6-parts' as const;

const NICKNAMES = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@hourly'];

/** Why `expr` is not a schedule runlet accepts, or undefined if it is fine. */
export function scheduleProblem(expr: string): string | undefined {
  // Validated once per distinct expression: thousands of tasks share a few schedules.
  if (checked.has(expr)) return checked.get(expr);
  const problem = findScheduleProblem(expr);
  if (checked.size >= CHECKED_MAX) checked.clear();
  checked.set(expr, problem);
  return problem;
}

const checked = new Map<string, string | undefined>();
const CHECKED_MAX = 100_000;

function findScheduleProblem(expr: string): string | undefined {
  const text = expr.trim();
  const shown = JSON.stringify(expr);
  if (text.startsWith('@')) {
    // croner knows more shortcuts (@reboot, @midnight) than the documented contract; keep
    // the contract small so every daemon in a cluster reads the same ticks.
    if (!NICKNAMES.includes(text.toLowerCase())) {
      return `invalid cron expression ${shown}: the shortcuts are ${NICKNAMES.join(', ')}`;
    }
  } else {
    const fields = text === '' ? 0 : text.split(/\s+/).length;
    if (fields !== 5 && fields !== 6) {
      return `invalid cron expression ${shown}: expected 5 fields (minute hour day month weekday) or 6 (seconds first), got ${fields}`;
    }
  }
  let cron: Cron;
  try {
    cron = new Cron(text, { paused: true, timezone: 'UTC', mode: CRON_MODE });
  } catch (err) {
    const reason = String((err as Error).message ?? err).replace(/^CronPattern:\s*/, '');
    return `invalid cron expression ${shown}: ${reason}`;
  }
  // "0 0 31 2 *" parses but never fires: a task that silently never runs is worse than an error.
  if (cron.nextRun() == null) return `cron expression ${shown} never fires (no date matches it)`;
  return undefined;
}

let knownZones: readonly string[] | undefined;

/** Why `zone` is not an IANA time zone, or undefined if it is one. */
export function timezoneProblem(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return undefined;
  } catch {
    knownZones ??= ['UTC', ...Intl.supportedValuesOf('timeZone')];
    const guess = closest(zone, knownZones);
    return guess
      ? `unknown time zone ${JSON.stringify(zone)} (did you mean ${JSON.stringify(guess)}?)`
      : `unknown time zone ${JSON.stringify(zone)}: use an IANA name like "Europe/Vienna" or "UTC"`;
  }
}
