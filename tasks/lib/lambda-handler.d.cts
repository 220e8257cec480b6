/** Runs `handler` on this run's event (/runlet/payload.json) and writes its result to /runlet/output.json; exits. */
export function invoke(handler: (event: any, context: any, callback?: (err: unknown, result?: unknown) => void) => unknown): void;
