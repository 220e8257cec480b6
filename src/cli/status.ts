import { clientFor, type CommonArgs } from './common.js';

interface TaskView {
  name: string;
  nextRunAt: string | null;
  lastRun: { id: string; status: string; finishedAt: string | null; durationMs: number | null } | null;
}
interface StatusView {
  node: string;
  daemons: Array<{ id: string; node: string; pid: number; startedAt: number }>;
  running: Array<{ id: string; task: string; status: string; node?: string; startedAt?: number }>;
  queued: Array<{ id: string; task: string; createdAt: number }>;
}

/** `runlet status`: daemons, tasks with next and last run, runs in progress. */
export async function statusCommand(args: CommonArgs): Promise<number> {
  const client = clientFor(args.env);
  const [status, { tasks }] = await Promise.all([
    client.request<StatusView>('GET', '/api/status'),
    client.request<{ tasks: TaskView[] }>('GET', '/api/tasks'),
  ]);
  const out: string[] = [];
  out.push(`daemons (${status.daemons.length}):`);
  for (const d of status.daemons) out.push(`  ${d.id}  node ${d.node}, up since ${new Date(d.startedAt).toISOString()}`);
  out.push('', 'tasks:');
  const width = Math.max(4, ...tasks.map((t) => t.name.length));
  out.push(`  ${'TASK'.padEnd(width)}  ${'NEXT RUN'.padEnd(24)}  LAST RUN`);
  for (const t of tasks) {
    const last = t.lastRun
      ? `${t.lastRun.status}${t.lastRun.durationMs !== null ? ` (${(t.lastRun.durationMs / 1000).toFixed(1)}s)` : ''} ${t.lastRun.id}`
      : '-';
    out.push(`  ${t.name.padEnd(width)}  ${(t.nextRunAt ?? '-').padEnd(24)}  ${last}`);
  }
  out.push('', `running (${status.running.length}):`);
  for (const r of status.running) {
    const elapsed = r.startedAt ? ` for ${((Date.now() - r.startedAt) / 1000).toFixed(0)}s` : '';
    out.push(`  ${r.id}  ${r.task}  ${r.status}${elapsed} on ${r.node ?? '?'}`);
  }
  out.push('', `queued (${status.queued.length}):`);
  for (const r of status.queued) out.push(`  ${r.id}  ${r.task}  waiting ${((Date.now() - r.createdAt) / 1000).toFixed(0)}s`);
  console.log(out.join('\n'));
  return 0;
}
