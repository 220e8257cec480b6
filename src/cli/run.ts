import { readFileSync } from 'node:fs';
import { closest as didYouMean } from '../config/did-you-mean.js';
import { CliError } from './client.js';
import { clientFor, loadOrExit, type CommonArgs } from './common.js';

interface RunView {
  id: string;
  status: string;
  exitCode: number | null;
  reason: string | null;
  durationMs: number | null;
  logTail: string;
}

const ENDED = ['succeeded', 'failed', 'timed_out', 'oom_killed', 'cancelled', 'skipped', 'lost'];

/**
 * `runlet run <task>`: queues a manual run. With --wait it follows the run to its end,
 * prints the outcome and the log tail, and exits with the run's own exit code (124 for a
 * timeout, as timeout(1) does; 137 for an OOM kill; 1 for any other failure).
 */
export async function runCommand(
  args: CommonArgs & { task: string; payloadFile?: string; wait: boolean; idempotencyKey?: string },
): Promise<number> {
  const config = loadOrExit(args);
  if (!config.tasks[args.task]) {
    const hint = didYouMean(args.task, Object.keys(config.tasks));
    throw new CliError(`no task named "${args.task}" in ${config.file}${hint ? ` (did you mean "${hint}"?)` : ''}`);
  }
  let payload: unknown;
  if (args.payloadFile) {
    const text = args.payloadFile === '-' ? readFileSync(0, 'utf8') : readFileSync(args.payloadFile, 'utf8');
    try {
      payload = JSON.parse(text);
    } catch (err) {
      throw new CliError(`--payload ${args.payloadFile}: not JSON (${(err as Error).message})`);
    }
  }
  const client = clientFor(args.env);
  // The same key again (a retried script) gets the first run back, not a second run.
  const headers: Record<string, string> = args.idempotencyKey ? { 'idempotency-key': args.idempotencyKey } : {};
  const { id } = await client.request<{ id: string }>('POST', `/api/tasks/${encodeURIComponent(args.task)}/runs`, payload ?? {}, headers);
  if (!args.wait) {
    console.log(id);
    return 0;
  }
  let run: RunView;
  for (;;) {
    run = await client.request<RunView>('GET', `/api/runs/${id}`);
    if (ENDED.includes(run.status)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  if (run.logTail) process.stdout.write(run.logTail.endsWith('\n') ? run.logTail : `${run.logTail}\n`);
  const took = run.durationMs !== null ? ` in ${(run.durationMs / 1000).toFixed(2)}s` : '';
  console.error(
    `run ${id} ${run.status}${took}${run.exitCode !== null ? `, exit code ${run.exitCode}` : ''}${run.reason ? `: ${run.reason}` : ''}`,
  );
  return exitCodeOf(run);
}

/**
 * The process exit code for a run's outcome, shared by `run --wait` and `logs -f`: the run's
 * own code for a failure, 124 for a timeout (as timeout(1)), 137 for an OOM kill, 1 otherwise.
 */
export function exitCodeOf(run: { status: string; exitCode: number | null }): number {
  switch (run.status) {
    case 'succeeded':
      return 0;
    case 'failed':
      return run.exitCode && run.exitCode > 0 && run.exitCode < 256 ? run.exitCode : 1;
    case 'timed_out':
      return 124;
    case 'oom_killed':
      return 137;
    default:
      return 1;
  }
}
