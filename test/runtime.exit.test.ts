import Docker from 'dockerode';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { LOG_TAIL_BYTES } from '../src/runtime/log-tail.js';
import { BUSYBOX, busyboxSpec, docker, exists, removeTestContainers, requireImages, runToEnd } from './helpers/docker.js';

const FILE = 'runtime.exit';
const sh = (script: string) => ['sh', '-c', script];

describe('DockerRuntime: containers that end on their own', () => {
  const runtime = new DockerRuntime({ docker });
  beforeAll(() => requireImages(BUSYBOX));
  afterAll(() => removeTestContainers(FILE));

  it('exit 0 succeeds with stdout and stderr in the tail, and remove() deletes the container', async () => {
    const { result, containerId } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('echo hello; echo oops >&2; exit 0') }));
    expect(result).toMatchObject({ outcome: 'succeeded', exitCode: 0 });
    expect(result.reason).toBeUndefined();
    expect(result.logTail).toContain('hello\n');
    expect(result.logTail).toContain('oops\n');
    expect(await exists(containerId)).toBe(false);
  });

  it('exit 3 fails with exitCode 3 and says so', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('exit 3') }));
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 3, reason: 'exit code 3' });
  });

  it('a program killed by a signal of its own says which', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('kill -9 $$') }));
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 137, reason: 'exit code 137 (killed by signal 9, SIGKILL)' });
  });

  it('100 KiB of output keeps exactly the last 64 KiB', async () => {
    // 1024 numbered lines of 100 bytes: the tail must end with the last line and start mid-file.
    const script = 'i=0; while [ $i -lt 1024 ]; do printf "%04d%095d\\n" $i 0; i=$((i+1)); done';
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(script) }));
    const all = Array.from({ length: 1024 }, (_, i) => `${String(i).padStart(4, '0')}${'0'.repeat(95)}\n`).join('');
    expect(all.length).toBe(102_400);
    expect(Buffer.byteLength(result.logTail)).toBe(LOG_TAIL_BYTES);
    expect(result.logTail).toBe(all.slice(-LOG_TAIL_BYTES));
  });

  it('the tail is cut at a UTF-8 character boundary', async () => {
    // 1000 lines of "a" + 30 three-byte characters: 65,536 bytes from the end falls inside a
    // character. (Lines, not one long line: the engine splits lines at 16 KiB itself and
    // stores a split character as U+FFFD.)
    const line = `a${'€'.repeat(30)}\n`;
    const script = `i=0; while [ $i -lt 1000 ]; do printf "${line.trimEnd()}\\n"; i=$((i+1)); done`;
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(script) }));
    const all = Buffer.from(line.repeat(1000));
    expect((all[all.length - LOG_TAIL_BYTES]! & 0xc0) === 0x80).toBe(true); // the cut is mid-character
    expect(result.logTail).not.toContain('\uFFFD');
    expect(result.logTail.endsWith(line)).toBe(true);
    expect(Buffer.byteLength(result.logTail)).toBeGreaterThan(LOG_TAIL_BYTES - 3);
    expect(all.toString().endsWith(result.logTail)).toBe(true);
  });

  it('onOutput is throttled to about one call per 500 ms and only when the tail changed', async () => {
    const calls: number[] = [];
    // Output every 50 ms for 3 s, then 2 s of silence.
    const script = 'i=0; while [ $i -lt 60 ]; do echo line $i; sleep 0.05; i=$((i+1)); done; sleep 2';
    const started = Date.now();
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(script) }), {
      onOutput: () => calls.push(Date.now() - started),
    });
    expect(result.outcome).toBe('succeeded');
    expect(calls.length).toBeGreaterThanOrEqual(3);
    const gaps = calls.slice(1).map((at, i) => at - calls[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(450);
    // Nothing is printed in the last 2 s, so nothing is sent then either.
    expect(calls.filter((at) => at > (calls[0] ?? 0) + 4_500)).toEqual([]);
  });

  it('passes the env to the program and never logs it', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    const logged = new DockerRuntime({ docker, logger: pino({ level: 'trace' }, sink) });
    const { result } = await runToEnd(
      logged,
      busyboxSpec(FILE, { env: { SECRET_TOKEN: 's3cr3t-value' }, command: sh('echo "got $SECRET_TOKEN"') }),
    );
    expect(result.logTail).toContain('got s3cr3t-value');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('')).not.toContain('s3cr3t-value');
  });

  it('reads the whole log after exit when following it broke', async () => {
    // A Docker client whose follow requests fail, as when the engine restarts mid-run.
    const flaky = new Docker();
    const getContainer = flaky.getContainer.bind(flaky);
    flaky.getContainer = (id: string) => {
      const container = getContainer(id);
      const logs = container.logs.bind(container) as (opts: Docker.ContainerLogsOptions) => Promise<unknown>;
      container.logs = ((opts: Docker.ContainerLogsOptions) =>
        opts.follow ? Promise.reject(new Error('log stream broke')) : logs(opts)) as typeof container.logs;
      return container;
    };
    const { result } = await runToEnd(
      new DockerRuntime({ docker: flaky }),
      busyboxSpec(FILE, { command: sh('echo first; echo second >&2') }),
    );
    expect(result.outcome).toBe('succeeded');
    // The engine's two copiers (stdout, stderr) don't keep order between the streams.
    expect(result.logTail.split('\n').sort()).toEqual(['', 'first', 'second']);
  });

  it('clears its timers when the container exits', async () => {
    // Every timer armed with the (10-minute) timeout or grace must be cleared by the time wait resolves.
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      const { result } = await runToEnd(
        runtime,
        busyboxSpec(FILE, { command: sh('echo quick'), timeoutMs: 600_000, killGraceMs: 600_000 }),
        { onOutput: () => undefined },
      );
      expect(result.outcome).toBe('succeeded');
      const long = spy.mock.calls.flatMap((call, i) =>
        (call[1] ?? 0) >= 60_000 ? [spy.mock.results[i]!.value as NodeJS.Timeout & { _destroyed: boolean }] : [],
      );
      expect(long.length).toBeGreaterThanOrEqual(1);
      expect(long.map((t) => t._destroyed)).toEqual(long.map(() => true));
    } finally {
      spy.mockRestore();
    }
  });
});
