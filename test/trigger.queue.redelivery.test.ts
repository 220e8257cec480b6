import { Queue, QueueEvents, type Job } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskConfig } from '../src/config/types.js';
import type { Enqueued } from '../src/dispatch/enqueue.js';
import { EndedRuns } from '../src/runs/ended.js';
import type { RunRequest } from '../src/runs/types.js';
import { QueueTrigger } from '../src/triggers/queue.js';
import type { TriggerDeps } from '../src/triggers/types.js';
import { configFrom, useDaemon } from './helpers/daemon.js';
import { until } from './helpers/until.js';

// The windows a crash can hit, made deterministic: a trigger whose submit hangs (before or
// after the run is recorded) is stopped as a dead daemon would be, and a second trigger on
// the same queue must take the job over and make exactly one run of it.
const YAML = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  echo:
    command: [sh, -c, 'cat /runlet/payload.json > /runlet/output.json']
`;
const STALLED_MS = 1000;
const quiet = pino({ level: 'silent' });

describe('a source job interrupted between receipt and completion', () => {
  const ctx = useDaemon(YAML);
  let ended: EndedRuns;
  let task: TaskConfig;
  const triggers: QueueTrigger[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(() => {
    ended = new EndedRuns(ctx.daemon.redis, ctx.daemon.store, quiet);
    ended.start();
    task = configFrom(YAML).tasks.echo!;
  });
  afterAll(async () => {
    for (const t of triggers) await t.stop();
    for (const c of closers) await c();
    await ended.stop();
  });

  /** A trigger on `queue` of this daemon, with `submit` replaced by `wrap(submit)`. */
  async function trigger(queue: string, wrap: (submit: TriggerDeps['submit']) => TriggerDeps['submit'] = (s) => s): Promise<QueueTrigger> {
    const config = configFrom(YAML);
    const deps: TriggerDeps = {
      config,
      submit: wrap((r) => ctx.daemon.submit(r) as Promise<Enqueued>),
      ended,
      store: ctx.daemon.store,
      redis: ctx.daemon.redis,
      redisTarget: ctx.daemon.redisTarget,
      identity: ctx.daemon.identity,
      logger: quiet,
      stalledMs: STALLED_MS,
    };
    const t = new QueueTrigger(deps, task, { name: queue, prefix: 'bull', concurrency: 5 });
    triggers.push(t);
    await t.start();
    return t;
  }

  async function producer(queue: string): Promise<{ add(id: string, data: unknown): Promise<Job>; queue: Queue; events: QueueEvents }> {
    const connection = { path: ctx.redis.path, maxRetriesPerRequest: null };
    const q = new Queue(queue, { connection });
    const events = new QueueEvents(queue, { connection });
    await events.waitUntilReady();
    closers.push(
      () => q.close(),
      () => events.close(),
    );
    return { add: (id, data) => q.add('job', data, { jobId: id }), queue: q, events };
  }

  /** The first submit never returns: before recording the run, or after. Later ones pass through. */
  function hangOnce(when: 'before-record' | 'after-record', calls: RunRequest[]) {
    return (submit: TriggerDeps['submit']): TriggerDeps['submit'] =>
      async (request) => {
        calls.push(request);
        if (calls.length > 1) return submit(request);
        if (when === 'after-record') await submit(request);
        return new Promise<Enqueued>(() => undefined);
      };
  }

  const runsOfKey = async (key: string) => (await ctx.daemon.store.list({ task: 'echo', limit: 500 })).filter((r) => r.dedupeKey === key);
  /** The return value the run's record calls for (output absent only if another suite removed the container first). */
  const resultFor = async (runId: string, data: unknown) => {
    const run = await ctx.daemon.store.get(runId, { withLogs: true });
    return { runId, status: 'succeeded', ...(run?.output !== undefined && { output: data }) };
  };

  it('stopped before the run was recorded: the job is delivered again and makes one run', async () => {
    const { add, events } = await producer('before');
    const calls: RunRequest[] = [];
    const a = await trigger('before', hangOnce('before-record', calls));
    const job = await add('j1', { n: 1 });
    await until('the condition', () => calls.length === 1);
    await a.stop();
    // Nothing was written for the job by the stopped trigger: it is still active, held by a lapsing lock.
    expect(await job.getState()).toBe('active');
    expect(await runsOfKey('echo:queue:before:j1')).toHaveLength(0);

    await trigger('before');
    const result = await job.waitUntilFinished(events, 20_000);
    const runs = await runsOfKey('echo:queue:before:j1');
    expect(runs).toHaveLength(1);
    expect(result).toEqual(await resultFor(runs[0]!.id, { n: 1 }));
    expect(calls).toHaveLength(1);
  });

  it('stopped after the run was recorded: the job is delivered again, finds the same run, and no second one is made', async () => {
    const { add, events } = await producer('after');
    const calls: RunRequest[] = [];
    const a = await trigger('after', hangOnce('after-record', calls));
    const job = await add('j1', { n: 2 });
    await until('the condition', async () => (await runsOfKey('echo:queue:after:j1')).length === 1);
    const [first] = await runsOfKey('echo:queue:after:j1');
    await a.stop();

    const seen: Enqueued[] = [];
    await trigger('after', (submit) => async (r) => {
      const res = await submit(r);
      seen.push(res);
      return res;
    });
    const result = await job.waitUntilFinished(events, 20_000);
    expect(seen).toEqual([{ runId: first!.id, created: false }]);
    expect(result).toEqual(await resultFor(first!.id, { n: 2 }));
    expect(await runsOfKey('echo:queue:after:j1')).toHaveLength(1);
    expect(await job.getState()).toBe('completed');
  });

  it("a submit that throws (runlet's Redis unreachable) is tried again while the job is held; the job is not failed", async () => {
    const { add, queue, events } = await producer('flaky');
    let calls = 0;
    await trigger('flaky', (submit) => async (r) => {
      if (++calls === 1) throw new Error('Connection is closed.');
      return submit(r);
    });
    const job = await add('j1', { n: 3 });
    const result = (await job.waitUntilFinished(events, 20_000)) as { runId: string };
    expect(calls).toBe(2);
    expect(await runsOfKey('echo:queue:flaky:j1')).toHaveLength(1);
    expect(result.runId).toBe((await runsOfKey('echo:queue:flaky:j1'))[0]!.id);
    // Completed on its first attempt: the error never reached BullMQ.
    const done = await queue.getJob('j1');
    expect(done?.finishedOn).toBeDefined();
    expect(done?.failedReason).toBeUndefined();
    expect(done?.attemptsStarted).toBe(1);
  });
});
