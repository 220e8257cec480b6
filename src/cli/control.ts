import { CliError } from './client.js';
import { clientFor, type CommonArgs } from './common.js';

/** `runlet pause|resume <task>`: cluster-wide, through the ops API. */
export async function pauseCommand(args: CommonArgs & { task: string; resume: boolean }): Promise<number> {
  const verb = args.resume ? 'resume' : 'pause';
  const res = await clientFor(args.env).request<{ task: string; paused: boolean; suspended?: boolean }>(
    'POST',
    `/api/tasks/${encodeURIComponent(args.task)}/${verb}`,
  );
  const note = res.suspended ? ' (but it is still suspended in the config: suspended: true)' : '';
  console.log(`${res.task} ${res.paused ? 'paused: its ticks are recorded as skipped until resumed' : 'resumed'}${note}`);
  return 0;
}

/** `runlet cancel <run-id>`: a queued run leaves the queue; a running one gets SIGTERM, grace, SIGKILL. */
export async function cancelCommand(args: CommonArgs & { runId: string }): Promise<number> {
  const res = await clientFor(args.env).request<{ id: string; status: string }>(
    'POST',
    `/api/runs/${encodeURIComponent(args.runId)}/cancel`,
  );
  console.log(`${res.id} ${res.status}`);
  return 0;
}

/** `runlet backfill <task> --from T --to T`: the past range's ticks, once each. */
export async function backfillCommand(args: CommonArgs & { task: string; from?: string; to?: string }): Promise<number> {
  if (!args.from || !args.to)
    throw new CliError('usage: runlet backfill <task> --from <time> --to <time>  (times like 2026-11-20T03:00:00Z)', 2);
  const res = await clientFor(args.env).request<{ ticks: number; created: string[]; existing: string[] }>(
    'POST',
    `/api/tasks/${encodeURIComponent(args.task)}/backfill`,
    {
      from: args.from,
      to: args.to,
    },
  );
  console.log(`${res.ticks} tick(s) in range: ${res.created.length} queued, ${res.existing.length} already had a run`);
  for (const id of res.created) console.log(`  ${id}`);
  return 0;
}
