import { formatBytes, formatDuration } from '../lib/format.js';
import type { NodeView } from '../ops/nodes.js';
import { clientFor, type CommonArgs } from './common.js';

interface TaskView {
  name: string;
  nextRunAt: string | null;
  lastRun: { id: string; status: string; finishedAt: string | null; durationMs: number | null } | null;
}
interface StatusView {
  node: string;
  daemons: Array<{ id: string; node: string; pid: number; startedAt: number }>;
  /** Absent from daemons older than the nodes view. */
  nodes?: NodeView[];
  running: Array<{ id: string; task: string; status: string; node?: string; startedAt?: number }>;
  queued: Array<{ id: string; task: string; createdAt: number }>;
}

/** `runlet status`: daemons, nodes (live and gone), tasks with next and last run, runs in progress. */
export async function statusCommand(args: CommonArgs): Promise<number> {
  const client = clientFor(args.env);
  const [status, { tasks }] = await Promise.all([
    client.request<StatusView>('GET', '/api/status'),
    client.request<{ tasks: TaskView[] }>('GET', '/api/tasks'),
  ]);
  const out: string[] = [];
  out.push(`daemons (${status.daemons.length}):`);
  for (const d of status.daemons) out.push(`  ${d.id}  node ${d.node}, up since ${new Date(d.startedAt).toISOString()}`);
  if (status.nodes) out.push('', `nodes (${status.nodes.length}):`, ...status.nodes.flatMap(nodeLines));
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

/** "node-a  live, heartbeat 2s ago, 1 run, memory 48 MiB of 64 MiB, pool default 1/8", then the runs. */
function nodeLines(n: NodeView): string[] {
  const parts =
    n.state === 'live'
      ? [`${n.name}  live, heartbeat ${formatDuration(n.sinceMs)} ago`]
      : [`${n.name}  GONE, last seen ${n.lastHeartbeatAt} (${formatDuration(n.sinceMs)} ago)`];
  const had = n.state === 'live' ? '' : 'had ';
  if (n.running) parts.push(`${had}${n.running.count} run${n.running.count === 1 ? '' : 's'}`);
  if (n.memory)
    parts.push(
      `memory ${formatBytes(n.memory.inUseBytes)}${n.memory.budgetBytes === null ? '' : ` of ${formatBytes(n.memory.budgetBytes)}`}`,
    );
  for (const p of n.pools) if (p.runs > 0 || n.state === 'live') parts.push(`pool ${p.name} ${p.runs}/${p.concurrency ?? '?'}`);
  // Older daemons' views have no `reuse`.
  for (const [task, r] of Object.entries(n.reuse ?? {})) parts.push(`reusable ${task} ${r.idle} idle/${r.busy} busy`);
  return [`  ${parts.join(', ')}`, ...(n.running?.runs ?? []).map((r) => `      ${r.id}  ${r.task}`)];
}
