import { CliError } from './client.js';
import { clientFor, type CommonArgs } from './common.js';
import { exitCodeOf } from './run.js';

/**
 * `runlet logs <run-id>`: the run's kept output (last 64 KiB), as the container wrote it.
 * With -f: that, then the output as it is written, until the run ends; then exits with the
 * same code `run --wait` would (0 succeeded, the run's exit code when it failed, 124 timed
 * out, 137 OOM-killed, 1 otherwise), so a script can follow a run and act on its outcome.
 */
export async function logsCommand(args: CommonArgs & { runId: string; follow?: boolean }): Promise<number> {
  const client = clientFor(args.env);
  const path = `/api/runs/${encodeURIComponent(args.runId)}/logs`;
  if (!args.follow) {
    process.stdout.write(await client.raw('GET', path));
    return 0;
  }
  let res: Response;
  try {
    res = await fetch(new URL(`${path}?follow=1`, client.baseUrl), {
      headers: args.env.RUNLET_TOKEN ? { authorization: `Bearer ${args.env.RUNLET_TOKEN}` } : {},
    });
  } catch (err) {
    throw new CliError(
      `cannot reach runlet at ${client.baseUrl} (${(err as Error).cause ?? (err as Error).message}). Is the daemon running (npm start)? Set RUNLET_URL to reach another one.`,
    );
  }
  if (!res.ok || !res.body) {
    const text = await res.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
    } catch {
      // not JSON: keep the text
    }
    throw new CliError(`GET ${path}: ${res.status} ${message}`);
  }
  // Bytes as they come: a partial UTF-8 character is completed by the terminal, not by us.
  for await (const chunk of res.body) {
    if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
  }
  const run = await client.request<{ status: string; exitCode: number | null; reason: string | null }>(
    'GET',
    `/api/runs/${encodeURIComponent(args.runId)}`,
  );
  return exitCodeOf(run);
}
