import { z } from 'zod';
import { got, isMap } from './describe.js';
import { closest } from './did-you-mean.js';
import { withHints } from './editor-hints.js';
import { countField, durationField, expected, fail, schemeOf, type Issue } from './fields.js';
import type { Finding } from './errors.js';
import type { AlertEvent, AlertRule } from './types.js';
import { parseDurationMs } from './units.js';
import type { KeyPath } from './yaml-source.js';

/**
 * The operations keys at the top level: `stuck:` (when a waiting run needs a person) and
 * `alerts:` (where failures and stuck runs are posted). Schemas, defaults, and the check
 * that needs the task list (an alert's `tasks:` must name tasks of the file).
 */

// --- stuck: -----------------------------------------------------------------------------

export const STUCK_DEFAULTS = { queued: '10m' } as const;

const stuckSchema = z
  .strictObject(
    {
      queued: withHints(
        durationField(
          'A run queued (and due: not waiting for a retry or its jitter) for longer than this is listed as stuck, with why it waits. At least 1s. Default 10m.',
          1_000,
          '1s',
        ).optional(),
        { default: STUCK_DEFAULTS.queued },
      ),
    },
    { error: (iss: Issue) => (iss.code === 'invalid_type' ? `expected a map like { queued: 10m }, got ${got(iss.input)}` : undefined) },
  )
  .nullable();

export const STUCK_KEYS: readonly string[] = Object.keys(stuckSchema.unwrap().shape);

export function stuckField() {
  return stuckSchema.meta({ description: 'When a run that waits counts as stuck (GET /api/stuck, alerts on: [stuck]).' });
}

export function resolveStuck(raw: z.output<typeof stuckSchema> | undefined): { queuedMs: number } {
  return { queuedMs: raw?.queued ?? parseDurationMs(STUCK_DEFAULTS.queued)! };
}

// --- alerts: ----------------------------------------------------------------------------

export const ALERT_EVENTS = [
  'failed',
  'timed_out',
  'oom_killed',
  'lost',
  'dead',
  'stuck',
  'cancelled',
  'succeeded',
] as const satisfies readonly AlertEvent[];
/** What a rule fires on unless it says: what needs a person, not every blip. */
export const DEFAULT_ALERT_EVENTS: readonly AlertEvent[] = ['failed', 'timed_out', 'oom_killed', 'dead', 'stuck'];
const ALERT_DEFAULTS = { timeout: '5s', retries: 5 } as const;
const ALERT_EXAMPLE = '{ url: ${SLACK_WEBHOOK_URL} }';

const urlField = withHints(
  z
    .string({
      error: (iss: Issue) =>
        iss.code === 'invalid_type' && iss.input === undefined
          ? 'required key is missing: add url: ${SLACK_WEBHOOK_URL} (the http(s) URL alerts are POSTed to)'
          : expected('an http(s) URL like "${SLACK_WEBHOOK_URL}"')(iss),
    })
    .transform((value, ctx) => {
      const url = value.trim();
      if (url === '') return fail(ctx, value, 'is empty (did its ${VAR} interpolate to nothing?): alerts would go nowhere');
      if (!/^https?:\/\//i.test(url) || !URL.canParse(url))
        return fail(ctx, value, `expected an http:// or https:// URL, got ${schemeOf(url)}`);
      return url;
    })
    .meta({
      description:
        'Where each alert is POSTed as JSON ({ text, event, task, run }); a Slack incoming-webhook URL works as is. Write ${VAR} to keep it out of the file.',
    }),
  { examples: ['${SLACK_WEBHOOK_URL}'] },
);

/** A list of words, or one word, or comma-separated words (what `${VAR}` yields). */
function wordList(value: string | string[]): { word: string; at: (string | number)[] }[] {
  if (typeof value === 'string')
    return value
      .split(',')
      .map((w) => ({ word: w.trim(), at: [] }))
      .filter((w) => w.word !== '');
  return value.map((w, i) => ({ word: w.trim(), at: [i] }));
}

const onField = withHints(
  z
    .union([z.string(), z.array(z.string({ error: expected('an alert event') }))], {
      error: expected('a list of alert events like [failed, dead]'),
    })
    .transform((value, ctx) => {
      const out: AlertEvent[] = [];
      for (const { word, at } of wordList(value)) {
        if (!(ALERT_EVENTS as readonly string[]).includes(word)) {
          const guess = closest(word, ALERT_EVENTS);
          fail(
            ctx,
            word,
            `expected an alert event (${ALERT_EVENTS.join(', ')}), got ${got(word)}${guess ? ` (did you mean "${guess}"?)` : ''}`,
            at,
          );
        } else if (out.includes(word as AlertEvent)) fail(ctx, word, `${got(word)} is listed twice`, at);
        else out.push(word as AlertEvent);
      }
      if (wordList(value).length === 0)
        fail(ctx, value, `must list at least one event (leave on out for ${DEFAULT_ALERT_EVENTS.join(', ')})`);
      return out;
    })
    .meta({
      description: `What the rule fires on: ${ALERT_EVENTS.join(', ')}. dead: failed with no attempt left; stuck: see stuck:. Default [${DEFAULT_ALERT_EVENTS.join(', ')}].`,
    }),
  { default: [...DEFAULT_ALERT_EVENTS] },
);

const tasksFilterField = withHints(
  z
    .union([z.string(), z.array(z.string({ error: expected('a task name') }))], { error: expected('a list of task names') })
    .transform((value, ctx) => {
      const words = wordList(value);
      if (words.length === 0) fail(ctx, value, 'must list at least one task (leave tasks out for every task)');
      return words.map((w) => w.word);
    })
    .meta({ description: 'Only runs of these tasks alert. Default: every task.' }),
  { examples: [['archive-app-starts']] },
);

const alertItem = z.strictObject(
  {
    url: urlField,
    on: onField.optional(),
    tasks: tasksFilterField.optional(),
    timeout: withHints(durationField('Longest one POST may take. At least 100ms. Default 5s.', 100, '100ms').optional(), {
      default: ALERT_DEFAULTS.timeout,
    }),
    retries: withHints(
      countField('Attempts in all for one alert, the first included, 1 s apart and doubling. Default 5.', 'attempts', 5).optional(),
      {
        default: ALERT_DEFAULTS.retries,
      },
    ),
  },
  { error: (iss: Issue) => (iss.code === 'invalid_type' ? `expected a map like ${ALERT_EXAMPLE}, got ${got(iss.input)}` : undefined) },
);

export const ALERT_KEYS: readonly string[] = Object.keys(alertItem.shape);

export function alertsField() {
  return withHints(
    z
      .array(alertItem, { error: expected(`a list of alert rules like [${ALERT_EXAMPLE}]`) })
      .nullable()
      .meta({
        description: 'Where failed, dead and stuck runs are posted (JSON POST, Slack-compatible text). Each rule alerts once per run.',
      }),
    { examples: [[{ url: '${SLACK_WEBHOOK_URL}', on: [...DEFAULT_ALERT_EVENTS] }]] },
  );
}

export function resolveAlerts(raw: readonly z.output<typeof alertItem>[] | null | undefined): AlertRule[] {
  return (raw ?? []).map((a) => ({
    url: a.url,
    on: a.on ?? [...DEFAULT_ALERT_EVENTS],
    ...(a.tasks !== undefined && { tasks: a.tasks }),
    timeoutMs: a.timeout ?? parseDurationMs(ALERT_DEFAULTS.timeout)!,
    retries: a.retries ?? ALERT_DEFAULTS.retries,
  }));
}

/** An alert for a task that does not exist could never fire: said here, with a guess. */
export function alertFindings(raw: Record<string, unknown>): Finding[] {
  if (!Array.isArray(raw.alerts)) return [];
  const names = isMap(raw.tasks) ? Object.keys(raw.tasks) : [];
  const findings: Finding[] = [];
  raw.alerts.forEach((rule, i) => {
    if (!isMap(rule)) return;
    const list = Array.isArray(rule.tasks) ? rule.tasks : typeof rule.tasks === 'string' ? [rule.tasks] : [];
    list.forEach((name, j) => {
      if (typeof name !== 'string') return;
      const words = Array.isArray(rule.tasks)
        ? [name.trim()]
        : name
            .split(',')
            .map((w) => w.trim())
            .filter(Boolean);
      for (const word of words) {
        if (names.includes(word)) continue;
        const path: KeyPath = Array.isArray(rule.tasks) ? ['alerts', i, 'tasks', j] : ['alerts', i, 'tasks'];
        const hint = closest(word, names);
        findings.push({
          path,
          at: 'value',
          message: `unknown task ${got(word)}${hint ? ` (did you mean "${hint}"?)` : ''}, so this alert could never fire for it; tasks: ${names.join(', ') || '(none)'}`,
        });
      }
    });
  });
  return findings;
}
