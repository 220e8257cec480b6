import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/runs/types.js';
import { manualRequest } from '../src/triggers/manual.js';
import { containersOfRun, useDaemon } from './helpers/daemon.js';

// Retries through the whole daemon: real containers, one run record across attempts.
// flaky's delay is 2s rather than 1s: creating and starting a container takes 0.4-1s under
// a loaded engine, and that noise sits in every gap measured from container timestamps; with
// 2s the doubling (1.6-2s, then 3.2-4s after jitter) stands clear of it.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s, killGrace: 1s }
tasks:
  flaky:   { command: [sh, -c, 'sleep 0.3; [ "$RUNLET_ATTEMPT" -ge 3 ] || exit 1; echo ok'], retries: { attempts: 3, backoff: exponential, delay: 2s } }
  broken:  { command: [sh, -c, 'echo "payload=$RUNLET_PAYLOAD attempt=$RUNLET_ATTEMPT"; exit 4'], retries: { attempts: 2, delay: 300ms } }
  linger:  { command: [sleep, "30"], retries: { attempts: 3, delay: 300ms } }
  fine:    { command: [sh, -c, 'echo "fine on attempt $RUNLET_ATTEMPT"'], retries: { attempts: 3, delay: 300ms } }
`;

const ctx = useDaemon(CONFIG);

const submit = async (task: string, payload?: unknown) => (await ctx.daemon.submit(manualRequest(task, payload))).runId;
const api = (path: string, init?: RequestInit) => fetch(`${ctx.daemon.url}${path}`, init);
const statuses = (r: RunRecord) => r.transitions.map((t) => t.status);

describe('a run that fails, then succeeds on a later attempt', () => {
  it('is one record with every attempt in it, RUNLET_ATTEMPT counting up, and growing waits in between', async () => {
    const retrying: number[] = [];
    const off = ctx.daemon.events.on('run:retrying', (e) => retrying.push(e.delayMs));
    const id = await submit('flaky');
    const r = await ctx.daemon.waitForEnd(id);
    off();

    expect(r).toMatchObject({ status: 'succeeded', exitCode: 0, attempt: 3, maxAttempts: 3 });
    expect(r.dead).toBeUndefined();
    expect(r.logTail).toContain('ok');
    expect(r.attempts.map((a) => [a.attempt, a.status, a.exitCode])).toEqual([
      [1, 'failed', 1],
      [2, 'failed', 1],
      [3, 'succeeded', 0],
    ]);
    // Each attempt ran in its own container, and all of them are gone.
    expect(new Set(r.attempts.map((a) => a.containerId)).size).toBe(3);
    expect(await containersOfRun(id)).toBe(0);
    expect(statuses(r)).toEqual([
      'queued',
      'starting',
      'running',
      'queued',
      'starting',
      'running',
      'queued',
      'starting',
      'running',
      'succeeded',
    ]);
    expect(r.transitions[3].reason).toMatch(/^attempt 1 of 3 failed \(exit code 1\); retrying in \d/);
    expect(r.transitions[6].reason).toMatch(/^attempt 2 of 3 failed \(exit code 1\); retrying in \d/);

    // Exponential: 2s then 4s, each up to 20% shorter. Measured from the attempts' own
    // timestamps (end of one container to start of the next), which add container start-up
    // to each wait: so the gaps are compared with each other, and bounded only from below.
    const [a1, a2, a3] = r.attempts;
    const gap1 = a2.startedAt! - a1.finishedAt!;
    const gap2 = a3.startedAt! - a2.finishedAt!;
    expect(gap1).toBeGreaterThanOrEqual(1500);
    expect(gap2).toBeGreaterThan(gap1);
    expect(gap2).toBeGreaterThanOrEqual(3000);
    // The waits chosen: the second about twice the first (jitter makes it 1.6× to 2.5×).
    expect(retrying).toHaveLength(2);
    expect(retrying[1] / retrying[0]).toBeGreaterThan(1.5);
    // Usage counts all three containers.
    expect(r.usage!.containerSeconds).toBeGreaterThanOrEqual(3 * 0.25); // three containers of ~0.3 s each
  });
});

describe('a run that fails on every attempt', () => {
  let deadId: string;

  it('ends in its real status, dead, after the last attempt', async () => {
    deadId = await submit('broken', { order: 7 });
    const r = await ctx.daemon.waitForEnd(deadId);
    expect(r).toMatchObject({ status: 'failed', exitCode: 4, dead: true, attempt: 2, maxAttempts: 2 });
    expect(r.reason).toBe('exit code 4');
    expect(r.attempts.map((a) => [a.attempt, a.status, a.exitCode])).toEqual([
      [1, 'failed', 4],
      [2, 'failed', 4],
    ]);
    expect(r.logTail).toContain('payload={"order":7} attempt=2');
  });

  it('is listed by GET /api/runs?dead=true, and shows its attempts in the run view', async () => {
    const dead = (await (await api('/api/runs?dead=true')).json()) as { runs: Array<{ id: string; dead: boolean; attempt: number }> };
    expect(dead.runs.map((r) => r.id)).toContain(deadId);
    expect(dead.runs.every((r) => r.dead)).toBe(true);
    const alive = (await (await api('/api/runs?dead=false&limit=1000')).json()) as { runs: Array<{ id: string }> };
    expect(alive.runs.map((r) => r.id)).not.toContain(deadId);
    expect((await api('/api/runs?dead=maybe')).status).toBe(400);

    const view = (await (await api(`/api/runs/${deadId}`)).json()) as {
      attempts: Array<Record<string, unknown>>;
      dead: boolean;
      maxAttempts: number;
    };
    expect(view).toMatchObject({ dead: true, maxAttempts: 2 });
    expect(view.attempts).toHaveLength(2);
    expect(view.attempts[0]).toMatchObject({ attempt: 1, status: 'failed', exitCode: 4, reason: 'exit code 4' });
    expect(view.attempts[0].startedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(view.attempts[0].containerId).toMatch(/^[0-9a-f]{12,}$/);
  });

  it('POST /api/runs/:id/retry runs it again as a new manual run with its original payload', async () => {
    const res = await api(`/api/runs/${deadId}/retry`, { method: 'POST' });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(id).not.toBe(deadId);
    const again = await ctx.daemon.waitForEnd(id);
    expect(again).toMatchObject({ trigger: 'manual', retryOf: deadId, payload: { order: 7 }, attempt: 2 });
    // The payload reached the new run's containers.
    expect(again.logTail).toContain('payload={"order":7} attempt=2');
    const old = await ctx.daemon.store.get(deadId);
    expect(old?.status).toBe('failed');
  });
});

describe('what is never retried, and what cannot be retried by hand', () => {
  it('a running or queued run cannot be retried (409); cancelled runs are not retried', async () => {
    const running = await submit('linger');
    await ctx.daemon.events.once('run:started', (e) => e.runId === running);
    // concurrency 1: a second run of the task waits in the queue.
    const queued = await submit('linger');
    for (const id of [running, queued]) {
      const res = await api(`/api/runs/${id}/retry`, { method: 'POST' });
      expect(res.status).toBe(409);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('RUN_NOT_ENDED');
      expect(body.error.message).toMatch(/is still (running|queued): only a run that ended can be retried/);
    }
    expect((await api('/api/runs/NOSUCHRUN/retry', { method: 'POST' })).status).toBe(404);

    await api(`/api/runs/${queued}/cancel`, { method: 'POST' });
    await api(`/api/runs/${running}/cancel`, { method: 'POST' });
    const [a, b] = [await ctx.daemon.waitForEnd(running), await ctx.daemon.waitForEnd(queued)];
    expect(a.status).toBe('cancelled');
    expect(a.dead).toBeUndefined();
    expect(a.attempts.map((x) => x.status)).toEqual(['cancelled']);
    expect(statuses(a)).toEqual(['queued', 'starting', 'running', 'cancelled']);
    expect(b.status).toBe('cancelled');
    expect(statuses(b)).toEqual(['queued', 'cancelled']);
    // No retry job turns up later.
    await new Promise((r) => setTimeout(r, 1000));
    expect((await ctx.daemon.store.get(running))?.status).toBe('cancelled');
  });

  it('a succeeded run is not retried', async () => {
    const id = await submit('fine');
    const r = await ctx.daemon.waitForEnd(id);
    expect(r).toMatchObject({ status: 'succeeded', attempt: 1, maxAttempts: 3 });
    expect(r.logTail).toContain('fine on attempt 1');
    expect(r.attempts.map((a) => a.status)).toEqual(['succeeded']);
    expect(statuses(r)).toEqual(['queued', 'starting', 'running', 'succeeded']);
  });
});
