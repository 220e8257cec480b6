import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { BUSYBOX, busyboxSpec, docker, removeTestContainers, requireImages, runToEnd } from './helpers/docker.js';

const FILE = 'runtime.timeout';
const sh = (script: string) => ['sh', '-c', script];
/** Engine round trips (kill, wait, inspect, log drain) on a loaded CI box. */
const SLACK_MS = 3_000;

describe('DockerRuntime: timeouts and cancellation', () => {
  const runtime = new DockerRuntime({ docker });
  beforeAll(() => requireImages(BUSYBOX));
  afterAll(() => removeTestContainers(FILE));

  it('a program that honours SIGTERM is stopped at the timeout', async () => {
    const spec = busyboxSpec(FILE, { command: ['sleep', '60'], timeoutMs: 2_000, killGraceMs: 1_000 });
    const { result, elapsedMs } = await runToEnd(runtime, spec);
    expect(result).toMatchObject({ outcome: 'timed_out', reason: 'exceeded timeout of 2s; stopped with SIGTERM' });
    // tini forwards SIGTERM to sleep, which dies of it: 128 + 15.
    expect(result.exitCode).toBe(143);
    expect(elapsedMs).toBeGreaterThanOrEqual(spec.timeoutMs);
    // No grace period was needed: well under timeout + grace.
    expect(elapsedMs).toBeLessThan(spec.timeoutMs + spec.killGraceMs + SLACK_MS);
  });

  it('a program that ignores SIGTERM is killed with SIGKILL after the grace period', async () => {
    const spec = busyboxSpec(FILE, { command: sh('trap "" TERM; while true; do sleep 1; done'), timeoutMs: 2_000, killGraceMs: 1_000 });
    const { result, elapsedMs } = await runToEnd(runtime, spec);
    expect(result).toMatchObject({
      outcome: 'timed_out',
      reason: 'exceeded timeout of 2s; killed with SIGKILL after 1s grace',
      exitCode: 137,
    });
    expect(elapsedMs).toBeGreaterThanOrEqual(spec.timeoutMs + spec.killGraceMs);
    expect(elapsedMs).toBeLessThan(spec.timeoutMs + spec.killGraceMs + SLACK_MS);
  });

  it('a program that exits 0 from its SIGTERM handler is still timed_out, not succeeded', async () => {
    const spec = busyboxSpec(FILE, {
      command: sh('trap "echo bye; exit 0" TERM; while true; do sleep 0.2; done'),
      timeoutMs: 1_500,
      killGraceMs: 5_000,
    });
    const { result } = await runToEnd(runtime, spec);
    expect(result).toMatchObject({ outcome: 'timed_out', exitCode: 0, reason: 'exceeded timeout of 1.5s; stopped with SIGTERM' });
    expect(result.logTail).toContain('bye');
  });

  it('cancel via AbortController stops the run as cancelled, with the abort reason when it is text', async () => {
    const cancel = new AbortController();
    const spec = busyboxSpec(FILE, { command: sh('echo running; sleep 60'), timeoutMs: 60_000, killGraceMs: 1_000 });
    setTimeout(() => cancel.abort('replaced by a newer run'), 1_000);
    const { result, elapsedMs } = await runToEnd(runtime, spec, { cancel: cancel.signal });
    expect(result).toMatchObject({ outcome: 'cancelled', reason: 'cancelled (replaced by a newer run); stopped with SIGTERM' });
    expect(result.logTail).toContain('running');
    expect(elapsedMs).toBeLessThan(1_000 + spec.killGraceMs + SLACK_MS);
  });

  it('a cancel during the grace period of a timeout does not change the outcome or restart the grace', async () => {
    const cancel = new AbortController();
    const spec = busyboxSpec(FILE, { command: sh('trap "" TERM; while true; do sleep 1; done'), timeoutMs: 1_000, killGraceMs: 2_000 });
    // 1 s into the 2 s grace of the timeout.
    const { result, elapsedMs } = await runToEnd(runtime, spec, { cancel: cancel.signal }, () => setTimeout(() => cancel.abort(), 2_000));
    expect(result).toMatchObject({ outcome: 'timed_out', reason: 'exceeded timeout of 1s; killed with SIGKILL after 2s grace' });
    expect(elapsedMs).toBeLessThan(spec.timeoutMs + spec.killGraceMs + SLACK_MS);
  });

  it('opts.deadline replaces start + timeoutMs', async () => {
    const spec = busyboxSpec(FILE, { command: ['sleep', '60'], timeoutMs: 60_000, killGraceMs: 1_000 });
    const { result, elapsedMs } = await runToEnd(runtime, spec, { deadline: Date.now() + 1_500 });
    expect(result.outcome).toBe('timed_out');
    expect(elapsedMs).toBeLessThan(1_500 + SLACK_MS);
  });

  it('a cancel after the container exited changes nothing and throws nothing', async () => {
    const cancel = new AbortController();
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('exit 0') }), { cancel: cancel.signal });
    cancel.abort();
    expect(result.outcome).toBe('succeeded');
  });
});
