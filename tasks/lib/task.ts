import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * What every example task shares: how it reads what runlet gives a run and hands back a
 * result. Bundled into each task's single file by scripts/build-images.sh (esbuild), so
 * this is ordinary code, not a package.
 */

/** The run's payload (from /runlet/payload.json), parsed as JSON; undefined when the run has none. */
export function payload<T = unknown>(): T | undefined {
  const file = process.env.RUNLET_PAYLOAD_FILE;
  if (!file || !existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  return text.trim() === '' ? undefined : (JSON.parse(text) as T);
}

/** The result a caller gets back: the run's output (webhook `respond: result`, queue job value, `after:` payload). */
export function output(value: unknown): void {
  writeFileSync('/runlet/output.json', JSON.stringify(value));
}

/** A setting from the environment; a missing required one ends the run with a clear message. */
export function setting(name: string, fallback?: string): string {
  const value = process.env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback !== undefined) return fallback;
  throw new TaskError(`${name} is not set: this task needs it (set it in the task's env: in runlet.yaml)`);
}

/** A failure the task explains itself: printed as one line, exit code 2 (no stack trace). */
export class TaskError extends Error {}

/** One JSON line on stdout: runlet keeps the tail, the dashboard shows it. */
export function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);
}

/**
 * Runs the task's main function: exit 0 on success, 2 for a TaskError (a setting or input
 * problem, reported in one line), 1 for anything else (with its stack).
 */
export function run(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      if (err instanceof TaskError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
