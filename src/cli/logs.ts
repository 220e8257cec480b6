import { clientFor, type CommonArgs } from './common.js';

/** `runlet logs <run-id>`: the run's kept output (last 64 KiB), as the container wrote it. */
export async function logsCommand(args: CommonArgs & { runId: string }): Promise<number> {
  const text = await clientFor(args.env).raw('GET', `/api/runs/${encodeURIComponent(args.runId)}/logs`);
  process.stdout.write(text);
  return 0;
}
