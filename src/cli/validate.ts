import type { RunletConfig } from '../config/types.js';
import { nextFireTimes } from '../triggers/schedule.js';
import { loadOrExit, type CommonArgs } from './common.js';

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
    const limits = `${formatBytes(t.memoryBytes)} memory, ${t.cpus} cpu, timeout ${formatMs(t.timeoutMs)}`;
    lines.push('', `${t.name}  (${t.image}; ${limits})`);
    if (t.schedule) {
      lines.push(`  cron  "${t.schedule}" in ${t.timezone}; next:`);
      for (const at of nextFireTimes(t, 3, now)) lines.push(`    ${inZone(at, t.timezone)}`);
    }
    lines.push('  manual  runlet run ' + t.name);
  }
  return lines.join('\n');
}

function inZone(ms: number, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short' }).formatToParts(new Date(ms));
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName} (${timeZone})`;
}

export function formatBytes(n: number): string {
  if (n % 2 ** 30 === 0) return `${n / 2 ** 30} GiB`;
  if (n % 2 ** 20 === 0) return `${n / 2 ** 20} MiB`;
  return `${n} bytes`;
}

export function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
