/**
 * The sentences that end up in a run record's `reason`. They are read by the person who owns
 * the task, so they name the limit that was hit and its configured value, not engine codes.
 */

const SIGNALS: Record<number, string> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  6: 'SIGABRT',
  9: 'SIGKILL',
  11: 'SIGSEGV',
  13: 'SIGPIPE',
  15: 'SIGTERM',
};

/**
 * Why a container that ended on its own counts as failed. 126 and 127 are the exec-failure
 * codes of the init (tini) and of shells; when tini's own message is in the output we can
 * name the program, which is the common "wrong command in the task config" mistake.
 */
export function exitReason(exitCode: number, logTail: string): string {
  if (exitCode === 127 || exitCode === 126) {
    const what = exitCode === 127 ? 'command not found' : 'command not executable';
    const tini = /\[FATAL tini \(\d+\)\] exec (.+) failed: /.exec(logTail);
    return tini ? `${what}: "${tini[1]}" (exit ${exitCode})` : `exit code ${exitCode} (${what})`;
  }
  if (exitCode > 128 && exitCode <= 128 + 64) {
    const signal = exitCode - 128;
    return `exit code ${exitCode} (killed by signal ${signal}${SIGNALS[signal] ? `, ${SIGNALS[signal]}` : ''})`;
  }
  return `exit code ${exitCode}`;
}

/**
 * The engine's start/create error, cut down to what a user can act on. The runc chain
 * ("OCI runtime create failed: container_linux.go:380: starting container process caused:
 * exec: ...: unknown") is mostly noise around one clause.
 */
export function startFailureReason(message: string): string {
  const notFound = /exec: "([^"]+)": (?:executable file not found|stat [^:]+: no such file)/.exec(message);
  if (notFound) return `command not found: "${notFound[1]}"`;
  const denied = /exec: "([^"]+)": permission denied/.exec(message);
  if (denied) return `command not executable: "${denied[1]}"`;
  const trimmed = message
    .replace(/^.*?caused:\s*/s, '')
    .replace(/container_linux\.go:\d+:\s*/g, '')
    .replace(/:\s*unknown\s*$/, '')
    .trim();
  return trimmed.length > 300 ? `${trimmed.slice(0, 297)}...` : trimmed;
}
