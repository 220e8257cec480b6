import { spawn, type ChildProcess } from 'node:child_process';
import { basename, dirname, join } from 'node:path';

/**
 * The built CLI as child processes, and free ports for them. Free of vitest, so the soak
 * (bench/soak.ts, compiled with the sources) runs the same code as the tests; the tests
 * import it through process.ts.
 */

// From test/helpers (vitest runs the sources) or dist/test/helpers (compiled for bench/).
const HERE = import.meta.dirname;
const ROOT = basename(dirname(dirname(HERE))) === 'dist' ? dirname(dirname(dirname(HERE))) : dirname(dirname(HERE));
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');

export { freePort } from './ports.js';

export interface DaemonProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves once the daemon logged that it is running. */
  ready: Promise<void>;
}

/** `runlet start` as a separate process (the built CLI), with its JSON log collected. */
export function spawnDaemon(configFile: string, env: Record<string, string>): DaemonProcess {
  const child = spawn(process.execPath, [CLI, 'start', '-c', configFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('runlet is running')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`daemon exited with ${code} before it was ready:\n${out}`)));
  });
  ready.catch(() => undefined);
  return { child, output: () => out, ready };
}

/**
 * Runs the CLI to completion. With `killAfterMs`, a CLI still running then is killed (SIGKILL,
 * code null): for a command expected to exit, such as a `start` that must refuse to start.
 */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
  killAfterMs?: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
