import { describe, expect, it } from 'vitest';
import { manualRequest } from '../src/triggers/manual.js';
import { containersOfRun, useDaemon } from './helpers/daemon.js';

// Every outcome a user sees, produced by a real container through the whole daemon:
// queue → worker → Docker → run record.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 32m, cpus: 0.5, timeout: 30s, killGrace: 1s }
tasks:
  ok:       { command: [sh, -c, "echo to stdout; echo to stderr >&2; sleep 0.5"] }
  exit3:    { command: [sh, -c, "echo about to fail; exit 3"] }
  slow:     { command: [sleep, "60"], timeout: 2s }
  hog:      { command: [sh, -c, 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'], memory: 48m }
  noimage:  { image: "runlet/does-not-exist:local" }
  nocmd:    { command: [no-such-program] }
  payload:  { command: [sh, -c, 'echo "payload=$RUNLET_PAYLOAD task=$RUNLET_TASK trigger=$RUNLET_TRIGGER"'] }
`;

const ctx = useDaemon(CONFIG);

const run = async (task: string, payload?: unknown) => {
  const { runId } = await ctx.daemon.submit(manualRequest(task, payload));
  return ctx.daemon.waitForEnd(runId);
};

describe('run outcomes from real containers', () => {
  it('exit 0 → succeeded, with its output, usage and every transition timed', async () => {
    const r = await run('ok');
    expect(r.status).toBe('succeeded');
    expect(r.exitCode).toBe(0);
    expect(r.logTail).toContain('to stdout');
    expect(r.logTail).toContain('to stderr');
    expect(r.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'succeeded']);
    const times = r.transitions.map((t) => t.at);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(r.usage?.containerSeconds).toBeGreaterThanOrEqual(0.4); // sleep 0.5, less the engine's start-stamp slack
    expect(r.usage?.containerSeconds).toBeLessThan(5);
    expect(r.usage?.gbSeconds).toBeCloseTo((r.usage!.containerSeconds * 32) / 1024, 5);
    expect(await containersOfRun(r.id)).toBe(0);
  });

  it('exit 3 → failed with exit code 3', async () => {
    const r = await run('exit3');
    expect(r).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(r.reason).toMatch(/exit code 3/);
    expect(r.logTail).toContain('about to fail');
  });

  it('over its timeout → timed_out, and the container is gone', async () => {
    const started = Date.now();
    const r = await run('slow');
    const elapsed = Date.now() - started;
    expect(r.status).toBe('timed_out');
    expect(r.reason).toMatch(/timeout of 2s/);
    expect(elapsed).toBeLessThan(2000 + 1000 + 8000);
    expect(await containersOfRun(r.id)).toBe(0);
  });

  it('over its memory → oom_killed, not "exit 137"', async () => {
    const r = await run('hog');
    expect(r.status, `${r.reason} / ${r.logTail?.slice(-300)}`).toBe('oom_killed');
    expect(r.reason).toMatch(/memory limit of 48 MiB/);
  });

  it('an image that does not exist → failed with that reason (and nothing is pulled)', async () => {
    const r = await run('noimage');
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/runlet\/does-not-exist:local.*not found locally/);
  });

  it('a command that does not exist → failed with that reason', async () => {
    const r = await run('nocmd');
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/command not found/);
    expect(r.reason).toMatch(/no-such-program/);
  });

  it('passes the payload and run metadata as environment variables', async () => {
    const r = await run('payload', { bid: 42 });
    expect(r.status).toBe('succeeded');
    expect(r.logTail).toContain('payload={"bid":42} task=payload trigger=manual');
    expect(r.payload).toEqual({ bid: 42 });
  });
});
