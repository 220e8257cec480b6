import type { AlertEvent, AlertRule } from '../config/types.js';
import type { StuckItem } from '../ops/stuck.js';
import { currentAttempt, type RunRecord, type RunStatus } from '../runs/types.js';

/** What an alert POST carries: Slack reads `text`; other receivers the rest. */
export interface AlertBody {
  readonly text: string;
  readonly event: AlertEvent;
  /** Every event of the rule's `on:` this alert stands for (a dead failed run: failed and dead). */
  readonly events: readonly AlertEvent[];
  readonly task: string;
  readonly run?: AlertRun;
  readonly stuck?: { kind: string; since: string; detail: string; waiting?: string };
}

export interface AlertRun {
  readonly id: string;
  readonly status: RunStatus;
  readonly exitCode: number | null;
  readonly reason: string | null;
  readonly attempts: number;
  readonly dead: boolean;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly node: string | null;
}

/** The statuses that may also be `dead` (runs/types.ts RunRecord.dead). */
const DEAD_STATUSES: readonly RunStatus[] = ['failed', 'timed_out', 'oom_killed', 'lost'];

/** Whether a run that ended in `status` may concern `rule` at all, before its record is read. */
export function mayConcern(rule: AlertRule, task: string, status: RunStatus): boolean {
  if (rule.tasks && !rule.tasks.includes(task)) return false;
  return rule.on.includes(status as AlertEvent) || (rule.on.includes('dead') && DEAD_STATUSES.includes(status));
}

/**
 * The rule's events an ended run matches, and the one its alert is sent as. A run gives one
 * alert per rule however many events it matches; `dead` wins over the status, since "no
 * attempt left, needs a person" is the stronger news, and `events` lists them all.
 */
export function eventsFor(rule: AlertRule, run: RunRecord): { event: AlertEvent; events: AlertEvent[] } | undefined {
  if (rule.tasks && !rule.tasks.includes(run.task)) return undefined;
  const events: AlertEvent[] = [];
  if (rule.on.includes(run.status as AlertEvent)) events.push(run.status as AlertEvent);
  if (run.dead && rule.on.includes('dead')) events.push('dead');
  if (events.length === 0) return undefined;
  return { event: events.includes('dead') ? 'dead' : events[0]!, events };
}

const EMOJI: Readonly<Record<AlertEvent, string>> = {
  failed: ':x:',
  timed_out: ':hourglass:',
  oom_killed: ':boom:',
  lost: ':ghost:',
  dead: ':skull:',
  stuck: ':warning:',
  cancelled: ':no_entry_sign:',
  succeeded: ':white_check_mark:',
};

const WORDS: Partial<Record<RunStatus, string>> = {
  timed_out: 'timed out',
  oom_killed: 'was OOM-killed',
  lost: 'was lost',
  cancelled: 'was cancelled',
};

/** Slack reads &, < and > as markup. */
function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function oneLine(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

export function alertRun(run: RunRecord): AlertRun {
  return {
    id: run.id,
    status: run.status,
    exitCode: run.exitCode ?? null,
    reason: run.reason ?? null,
    attempts: Math.max(run.attempts.length, currentAttempt(run)),
    dead: run.dead ?? false,
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
    node: run.node ?? null,
  };
}

/** `:x: runlet: archive run 01J… failed (exit 3) after 2 attempts, dead: exit code 3` */
export function runAlert(run: RunRecord, event: AlertEvent, events: AlertEvent[]): AlertBody {
  const r = alertRun(run);
  const what = WORDS[run.status] ?? run.status;
  const exit = run.exitCode !== undefined && run.status !== 'succeeded' ? ` (exit ${run.exitCode})` : '';
  const tries = r.attempts > 1 ? ` after ${r.attempts} attempts` : '';
  const dead = run.dead ? ', dead (no attempt left)' : '';
  const reason = run.reason ? `: ${oneLine(run.reason)}` : '';
  const text = `${EMOJI[event]} runlet: ${escape(`${run.task} run ${run.id} ${what}${exit}${tries}${dead}${reason}`)}`;
  return { text, event, events, task: run.task, run: r };
}

/** `:warning: runlet: archive run 01J… is stuck (queued_too_long): queued for 12m: ...` */
export function stuckAlert(item: StuckItem, run: RunRecord | undefined): AlertBody {
  const subject = item.runId ? `${item.task} run ${item.runId}` : `${item.task}`;
  const text = `${EMOJI.stuck} runlet: ${escape(`${subject} is stuck (${item.kind}): ${oneLine(item.detail)}`)}`;
  return {
    text,
    event: 'stuck',
    events: ['stuck'],
    task: item.task,
    ...(run && { run: alertRun(run) }),
    stuck: {
      kind: item.kind,
      since: new Date(item.since).toISOString(),
      detail: item.detail,
      ...(item.waiting && { waiting: item.waiting.text }),
    },
  };
}
