import { CliError } from './client.js';
import { clientFor, type CommonArgs } from './common.js';

interface RunLine {
  id: string;
  task: string;
  status: string;
  dead: boolean;
  attempt: number | null;
  maxAttempts: number | null;
  createdAt: string;
  reason: string | null;
}

/**
 * `runlet runs [--task T] [--status S] [--dead] [--limit N]`: recent runs, newest first,
 * one line each (id, task, status, attempt, created, reason), for reading or for `grep`/`cut`.
 */
export async function runsCommand(args: CommonArgs & { task?: string; status?: string; dead: boolean; limit?: string }): Promise<number> {
  const query = new URLSearchParams();
  if (args.task) query.set('task', args.task);
  if (args.status) query.set('status', args.status);
  if (args.dead) query.set('dead', 'true');
  if (args.limit) query.set('limit', args.limit);
  const qs = query.toString();
  const { runs } = await clientFor(args.env).request<{ runs: RunLine[] }>('GET', `/api/runs${qs ? `?${qs}` : ''}`);
  if (runs.length === 0) console.error('no runs match');
  const taskWidth = Math.max(0, ...runs.map((r) => r.task.length));
  for (const r of runs) {
    const status = r.dead ? `${r.status} (dead)` : r.status;
    const attempt = r.attempt !== null && r.maxAttempts !== null ? `attempt ${r.attempt}/${r.maxAttempts}` : '-';
    console.log([r.id, r.task.padEnd(taskWidth), status.padEnd(19), attempt.padEnd(13), r.createdAt, r.reason ?? ''].join('  ').trimEnd());
  }
  return 0;
}

/** `runlet retry <run-id>`: runs an ended run again, as a new manual run with its payload; prints the new run's id. */
export async function retryCommand(args: CommonArgs & { runId: string }): Promise<number> {
  if (!args.runId) throw new CliError('usage: runlet retry <run-id>', 2);
  const res = await clientFor(args.env).request<{ id: string }>('POST', `/api/runs/${encodeURIComponent(args.runId)}/retry`);
  console.log(res.id);
  return 0;
}
