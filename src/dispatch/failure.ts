/** The shape of errors the runtime throws when a run cannot start (see runtime/errors.ts). */
export interface RunFailedToStartLike {
  reason?: string;
  message?: string;
}

/** A reason a user can act on, from whatever the runtime threw. */
export function describeFailure(err: RunFailedToStartLike | undefined): string {
  if (!err) return 'the run could not start (no reason given)';
  return err.reason ?? err.message ?? String(err);
}
