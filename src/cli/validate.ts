import type { RunletConfig } from '../config/types.js';
import { formatBytes, formatDuration } from '../lib/format.js';
import { describeTrigger, triggersOf } from '../triggers/describe.js';
import { nextFireTimes } from '../config/fire-times.js';
import { loadOrExit, type CommonArgs } from './common.js';
import { runsAsRoot } from '../runtime/isolation.js';

/** `runlet validate`: every error at once (exit 1), or each task with its next three fire times. */
export async function validateCommand(args: CommonArgs): Promise<number> {
  const config = loadOrExit(args);
  console.log(describeConfig(config));
  return 0;
}

export function describeConfig(config: RunletConfig, now = new Date()): string {
  const tasks = Object.values(config.tasks);
  const lines = [`${config.file}: ok, ${tasks.length} task${tasks.length === 1 ? '' : 's'}`];
  for (const t of tasks) {
    const limits = `${formatBytes(t.memoryBytes)} memory, ${t.cpus} cpu, timeout ${formatDuration(t.timeoutMs)}`;
    lines.push('', `${t.name}  (${t.image}; ${limits})`);
    if (t.schedule) {
      lines.push(`  cron  "${t.schedule}" in ${t.timezone}; next:`);
      for (const at of nextFireTimes(t, 3, now)) lines.push(`    ${inZone(at, t.timezone)}`);
    }
    for (const trigger of triggersOf(t))
      if (trigger.type !== 'cron' && trigger.type !== 'manual') lines.push(`  ${describeTrigger(trigger)}`);
    lines.push('  manual  runlet run ' + t.name);
    lines.push(`  isolation  ${isolationLine(t)}`);
    // Names only: a secret's value is shown nowhere.
    const secrets = Object.keys(t.secrets);
    if (secrets.length > 0) lines.push(`  secrets  ${secrets.join(', ')} (values hidden)`);
    const r = t.retries;
    if (r.attempts > 1) {
      const wait =
        r.backoff === 'fixed'
          ? `${formatDuration(r.delayMs)} apart`
          : `waits doubling from ${formatDuration(r.delayMs)} up to ${formatDuration(r.maxDelayMs)}`;
      lines.push(`  retries  up to ${r.attempts} attempts in all, ${wait}`);
    }
  }
  return lines.join('\n');
}

/** The run's user and root filesystem, an opt-out from the defaults said in capitals so it is not missed. */
function isolationLine(t: RunletConfig['tasks'][string]): string {
  const user = runsAsRoot(t.user) ? `AS ROOT (user: ${t.user})` : `as ${t.user}`;
  const root = t.readOnly ? 'read-only root filesystem' : 'WRITABLE root filesystem (readOnly: false)';
  return `runs ${user}, ${root}, network ${t.network}`;
}

function inZone(ms: number, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).formatToParts(new Date(ms));
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName} (${timeZone})`;
}
