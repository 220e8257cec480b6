/**
 * The run could not be created or started. `reason` is written for the person who owns the
 * task (it ends up in the run record), `cause` keeps the engine's error for the logs.
 */
export class RunFailedToStart extends Error {
  readonly reason: string;

  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'RunFailedToStart';
    this.reason = reason;
  }
}

/** The HTTP status of a dockerode error, if it has one. */
export function engineStatus(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The engine's own message (without dockerode's "(HTTP code 404) no such container -" prefix). */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: unknown } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  if (err instanceof Error) return err.message.replace(/^\(HTTP code \d+\)[^-]*- /, '');
  return String(err);
}

/** The engine's socket is missing or refuses: nothing was sent. */
export function notConnected(err: unknown): boolean {
  const { code, syscall } = (err ?? {}) as NodeJS.ErrnoException;
  return syscall === 'connect' && (code === 'ENOENT' || code === 'ECONNREFUSED');
}
