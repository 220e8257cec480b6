import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RetryPolicy, TaskConfig } from '../src/config/types.js';
import { recoverOutbox } from '../src/dispatch/enqueue.js';
import { PoolQueues } from '../src/dispatch/queues.js';
import { TaskGate } from '../src/dispatch/gate.js';
import { endAttempt, retryDelayMs, type AttemptEnd, type RetryDeps } from '../src/dispatch/retries.js';
import { RunletEvents } from '../src/runs/events.js';
import { RunStore } from '../src/runs/store.js';
import { configFrom } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// The retry decision against a real Redis and real BullMQ queues, without containers: the
// claim that makes it once, the job it adds, outbox recovery, lost attempts, retention.

describe('retryDelayMs', () => {
  const policy = (backoff: RetryPolicy['backoff']): RetryPolicy => ({ attempts: 10, backoff, delayMs: 1000, maxDelayMs: 5000 });

  it('exponential: delay × 2^(n-1), capped by maxDelay; jitter only ever shortens, by at most 20%', () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(policy('exponential'), n, () => 0))).toEqual([1000, 2000, 4000, 5000, 5000]);
    expect([1, 2, 3, 4].map((n) => retryDelayMs(policy('exponential'), n, () => 1))).toEqual([800, 1600, 3200, 4000]);
  });

  it('fixed: delay every time, with the same jitter', () => {
    expect([1, 2, 6].map((n) => retryDelayMs(policy('fixed'), n, () => 0))).toEqual([1000, 1000, 1000]);
    expect(retryDelayMs(policy('fixed'), 3, () => 0.5)).toBe(900);
  });
});

const task: TaskConfig = configFrom(`
tasks:
  job: { image: runlet/busybox:local, retries: { attempts: 2, delay: 10s } }
`).tasks.job;

let server: Awaited<ReturnType<typeof startTestRedis>>;
let redis: Redis;
let deps: RetryDeps;
let queues: PoolQueues;

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis({ path: server.path });
  queues = new PoolQueues(new Redis({ path: server.path, maxRetriesPerRequest: null }));
  deps = { store: new RunStore(redis), queues, events: new RunletEvents(), logger: pino({ level: 'silent' }) };
});
afterAll(async () => {
  await queues.close();
  redis.disconnect();
  await server.stopAndClean();
});

const failed = (): AttemptEnd => ({
  attempt: 1,
  status: 'failed',
  exitCode: 1,
  reason: 'exit code 1',
  startedAt: Date.now() - 500,
  finishedAt: Date.now(),
  usage: { containerSeconds: 0.5, gbSeconds: 0.1 },
});

async function runningRun(): Promise<string> {
  const { runId } = await deps.store.create(
    { task: 'job', trigger: 'manual', dedupeKey: `job:manual:${Math.random()}` },
    { maxAttempts: 2 },
  );
  await deps.store.confirmQueued(runId);
  await deps.store.transition(runId, 'starting', { from: ['queued'] });
  await deps.store.transition(runId, 'running', { from: ['starting'], fields: { containerId: 'c1', startedAt: Date.now() } });
  return runId;
}

describe('ending an attempt', () => {
  it('is decided once: two enders of the same attempt (a redelivered job) make one retry and one job', async () => {
    const runId = await runningRun();
    // Separate connections, like two daemons.
    const other: RetryDeps = { ...deps, store: new RunStore(new Redis({ path: server.path })) };
    const results = await Promise.all([endAttempt(deps, runId, task, failed()), endAttempt(other, runId, task, failed())]);
    expect(results.map((r) => r.kind).sort()).toEqual(['refused', 'retrying']);

    const run = (await deps.store.get(runId))!;
    expect(run).toMatchObject({ status: 'queued', attempt: 2, maxAttempts: 2 });
    expect(run.reason).toMatch(/^attempt 1 of 2 failed \(exit code 1\); retrying in \d/);
    expect(run.containerId).toBeUndefined(); // the next attempt's container is not known yet
    expect(run.attempts).toEqual([expect.objectContaining({ attempt: 1, status: 'failed', exitCode: 1, containerId: 'c1' })]);
    expect(run.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'queued']);
    expect(run.usage).toEqual({ containerSeconds: 0.5, gbSeconds: 0.1 });

    const job = await queues.get('default').getJob(`${runId}-a2`);
    expect(job?.data).toEqual({ runId, task: 'job' });
    expect(await job?.getState()).toBe('delayed');
    expect(job!.opts.delay).toBeGreaterThanOrEqual(8000);
    expect(job!.opts.delay).toBeLessThanOrEqual(10_000);
    expect(await deps.store.unconfirmed(0)).not.toContain(runId);

    // Once the run waits for attempt 2, attempt 1 can't be ended again; and an ender that
    // does not say which attempt (so means the current one) can't end a run that waits.
    expect((await endAttempt(deps, runId, task, failed())).kind).toBe('refused');
    expect((await endAttempt(deps, runId, task, { ...failed(), attempt: undefined })).kind).toBe('refused');
    const after = (await deps.store.get(runId))!;
    expect(after).toMatchObject({ status: 'queued', attempt: 2 });
    expect(after.attempts).toHaveLength(1);
  });

  it('the last attempt ends the run in its real status, dead, with the usage of all attempts', async () => {
    const runId = await runningRun();
    await endAttempt(deps, runId, task, failed());
    await deps.store.transition(runId, 'starting', { from: ['queued'] });
    await deps.store.transition(runId, 'running', { from: ['starting'], fields: { containerId: 'c2', startedAt: Date.now() } });
    const last = await endAttempt(deps, runId, task, {
      ...failed(),
      attempt: 2,
      status: 'timed_out',
      exitCode: undefined,
      reason: 'ran past its timeout',
    });
    expect(last).toEqual({ kind: 'ended', status: 'timed_out', dead: true });
    const run = (await deps.store.get(runId))!;
    expect(run).toMatchObject({
      status: 'timed_out',
      dead: true,
      attempt: 2,
      reason: 'ran past its timeout',
      usage: { containerSeconds: 1, gbSeconds: 0.2 },
    });
    expect(run.retryAt).toBeUndefined();
    expect(run.attempts.map((a) => [a.attempt, a.status, a.containerId])).toEqual([
      [1, 'failed', 'c1'],
      [2, 'timed_out', 'c2'],
    ]);
    expect(await deps.store.list({ dead: true })).toEqual([expect.objectContaining({ id: runId })]);
  });

  it('a lost attempt is retried like a failed one', async () => {
    const runId = await runningRun();
    const res = await endAttempt(deps, runId, task, {
      status: 'lost',
      reason: 'its node went away',
      finishedAt: Date.now(),
      usage: { containerSeconds: 0, gbSeconds: 0 },
    });
    expect(res.kind).toBe('retrying');
    expect((await deps.store.get(runId))!.reason).toMatch(/^attempt 1 of 2 was lost \(its node went away\); retrying in/);
  });

  it('cancelled and succeeded end the run whatever attempts are left', async () => {
    for (const status of ['cancelled', 'succeeded'] as const) {
      const runId = await runningRun();
      expect(await endAttempt(deps, runId, task, { ...failed(), status })).toEqual({ kind: 'ended', status, dead: false });
      expect(await queues.get('default').getJob(`${runId}-a2`)).toBeUndefined();
    }
  });

  it("a daemon that died between the claim and adding the job: outbox recovery adds that attempt's job, with the rest of its delay", async () => {
    const runId = await runningRun();
    // The claim alone, as endAttempt makes it, with no job added after it.
    const claimed = await deps.store.endAttempt(runId, 'queued', {
      from: ['running'],
      attempt: 1,
      entry: { attempt: 1, status: 'failed' },
      fields: { attempt: 2, retryAt: Date.now() + 5000 },
    });
    expect(claimed).toBe(true);
    expect(await deps.store.unconfirmed(0)).toContain(runId);
    const recovered = await recoverOutbox(
      {
        config: { tasks: {} } as never,
        policies: [],
        store: deps.store,
        queues,
        gate: new TaskGate(redis, { tasks: {} } as never, deps.logger),
        events: deps.events,
        logger: deps.logger,
      },
      0,
    );
    expect(recovered).toBeGreaterThanOrEqual(1);
    const job = await queues.get('default').getJob(`${runId}-a2`);
    expect(await job?.getState()).toBe('delayed');
    expect(job!.opts.delay).toBeGreaterThan(3000);
    expect(job!.opts.delay).toBeLessThanOrEqual(5000);
    expect(await deps.store.unconfirmed(0)).not.toContain(runId);
  });

  it("retention deletes a run's attempts with it", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const runId = await runningRun();
      await endAttempt(deps, runId, task, { ...failed(), status: 'succeeded' });
      ids.push(runId);
    }
    expect(await redis.exists(`runlet:run:${ids[0]}:attempts`)).toBe(1);
    await deps.store.trim('job', 1);
    expect(await redis.exists(`runlet:run:${ids[0]}:attempts`)).toBe(0);
    expect(await redis.exists(`runlet:run:${ids[1]}:attempts`)).toBe(1);
  });
});
