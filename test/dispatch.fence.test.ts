import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskConfig } from '../src/config/types.js';
import { PoolQueues } from '../src/dispatch/queues.js';
import { endAttempt, type RetryDeps } from '../src/dispatch/retries.js';
import { RunletEvents } from '../src/runs/events.js';
import { RunStore } from '../src/runs/store.js';
import { MOVES } from '../src/runs/types.js';
import { configFrom } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// The fence against a real Redis: every write for an attempt names the claim that holds it,
// and adoption takes the claim over with a compare-and-set. A holder that was deposed (adopted
// by a daemon of its node, or declared lost by another node, while it was frozen or cut off)
// writes nothing when it wakes, whatever it tries.

const task: TaskConfig = configFrom(`
tasks:
  job: { image: runlet/busybox:local, retries: { attempts: 2, delay: 1s } }
`).tasks.job;

let server: Awaited<ReturnType<typeof startTestRedis>>;
let redis: Redis;
let store: RunStore;
let deps: RetryDeps;
let queues: PoolQueues;

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis({ path: server.path });
  store = new RunStore(redis);
  queues = new PoolQueues(new Redis({ path: server.path, maxRetriesPerRequest: null }));
  deps = { store, queues, events: new RunletEvents(), logger: pino({ level: 'silent' }) };
});
afterAll(async () => {
  await queues.close();
  redis.disconnect();
  await server.stopAndClean();
});

let n = 0;
/** A run claimed by `holder` and running, at attempt 1. */
async function runningRun(holder: string): Promise<string> {
  const { runId } = await store.create({ task: 'job', trigger: 'manual', dedupeKey: `job:manual:fence-${n++}` }, { maxAttempts: 2 });
  expect(await store.claim(runId, { attempt: 1, token: holder, fields: { daemon: holder.split(':')[0] } })).toBe(true);
  expect(await store.fencedTransition(runId, MOVES.run.to, { from: MOVES.run.from, attempt: 1, claim: holder })).toBe(true);
  return runId;
}

const end = (claim: string) => ({
  attempt: 1,
  claim,
  status: 'succeeded' as const,
  finishedAt: Date.now(),
  usage: { containerSeconds: 1, gbSeconds: 0 },
});

describe('adoption: a compare-and-set on the claim', () => {
  it('of two adopters that read the same claim, one wins; the deposed holder can write neither its tail, nor its start, nor its end', async () => {
    const runId = await runningRun('daemon-a:a1:x');
    const adopt = (who: string) => store.adopt(runId, { attempt: 1, expected: 'daemon-a:a1:x', claim: `${who}:a1:y`, daemon: who });
    const won = await Promise.all([adopt('daemon-b'), adopt('daemon-c')]);
    expect(won.filter(Boolean)).toHaveLength(1);
    const winner = won[0] ? 'daemon-b' : 'daemon-c';
    expect(await store.get(runId)).toMatchObject({ daemon: winner, claim: `${winner}:a1:y`, status: 'running' });

    // The old holder wakes up and writes as if nothing happened: all refused.
    expect(await store.setLogTail(runId, 'late tail', { attempt: 1, bytes: 9, claim: 'daemon-a:a1:x' })).toBe(false);
    expect(await store.fencedTransition(runId, MOVES.run.to, { from: ['starting', 'running'], attempt: 1, claim: 'daemon-a:a1:x' })).toBe(
      false,
    );
    expect((await endAttempt(deps, runId, task, end('daemon-a:a1:x'))).kind).toBe('refused');
    expect((await store.get(runId))?.status).toBe('running');

    // The adopter's writes go through.
    expect(await store.setLogTail(runId, 'adopted tail', { attempt: 1, bytes: 12, claim: `${winner}:a1:y` })).toBe(true);
    expect((await endAttempt(deps, runId, task, end(`${winner}:a1:y`))).kind).toBe('ended');
    expect(await store.get(runId, { withLogs: true })).toMatchObject({ status: 'succeeded', logTail: 'adopted tail' });
  });

  it('a node that declares the holder lost with the claim it read loses to an adoption that came first, and the other way round', async () => {
    // Adopted first: the declaration names a claim that is no longer current, and is refused.
    const adopted = await runningRun('daemon-a:a1:x');
    expect(await store.adopt(adopted, { attempt: 1, expected: 'daemon-a:a1:x', claim: 'daemon-b:a1:y', daemon: 'daemon-b' })).toBe(true);
    const lost = (claim: string) => ({
      attempt: 1,
      claim,
      status: 'lost' as const,
      finishedAt: Date.now(),
      usage: { containerSeconds: 0, gbSeconds: 0 },
    });
    expect((await endAttempt(deps, adopted, task, lost('daemon-a:a1:x'))).kind).toBe('refused');
    expect((await store.get(adopted))?.status).toBe('running');

    // Declared lost first (and retried): the adoption finds another attempt current, and is refused.
    const declared = await runningRun('daemon-a:a1:x');
    expect((await endAttempt(deps, declared, task, lost('daemon-a:a1:x'))).kind).toBe('retrying');
    expect(await store.adopt(declared, { attempt: 1, expected: 'daemon-a:a1:x', claim: 'daemon-b:a1:y', daemon: 'daemon-b' })).toBe(false);
    expect(await store.get(declared)).toMatchObject({ status: 'queued', attempt: 2 });
  });

  it('a lost attempt whose container may still run is retried no earlier than its deadline', async () => {
    const runId = await runningRun('daemon-a:a1:x');
    const deadline = Date.now() + 60_000;
    const out = await endAttempt(deps, runId, task, {
      attempt: 1,
      claim: 'daemon-a:a1:x',
      notBefore: deadline,
      status: 'lost',
      finishedAt: Date.now(),
      usage: { containerSeconds: 0, gbSeconds: 0 },
    });
    expect(out.kind).toBe('retrying');
    const rec = await store.get(runId);
    expect(rec?.retryAt).toBeGreaterThanOrEqual(deadline);
    const job = await queues.get('default').getJob(`${runId}-a2`);
    expect(job?.opts.delay).toBeGreaterThanOrEqual(deadline - Date.now() - 1000);
  });

  it('an attempt known never to have started does not count: a task without retries still gets the run it was owed', async () => {
    const once: TaskConfig = configFrom(`
tasks:
  job: { image: runlet/busybox:local }
`).tasks.job;
    const { runId } = await store.create({ task: 'job', trigger: 'cron', dedupeKey: `job:cron:never-started-${n++}` }, { maxAttempts: 1 });
    expect(await store.claim(runId, { attempt: 1, token: 'daemon-a:a1:x' })).toBe(true);
    const lost = {
      attempt: 1,
      claim: 'daemon-a:a1:x',
      status: 'lost' as const,
      finishedAt: Date.now(),
      usage: { containerSeconds: 0, gbSeconds: 0 },
    };
    // Its daemon died between the claim and the start (no container of it ran): given back.
    expect((await endAttempt(deps, runId, once, { ...lost, neverStarted: true })).kind).toBe('retrying');
    expect(await store.get(runId)).toMatchObject({ status: 'queued', attempt: 2, maxAttempts: 2 });

    // One that may have run (it was running) counts: no retries, it stays lost.
    const ran = await store.create({ task: 'job', trigger: 'cron', dedupeKey: `job:cron:ran-${n++}` }, { maxAttempts: 1 });
    expect(await store.claim(ran.runId, { attempt: 1, token: 'daemon-a:a1:y' })).toBe(true);
    expect((await endAttempt(deps, ran.runId, once, { ...lost, claim: 'daemon-a:a1:y' })).kind).toBe('ended');
    expect((await store.get(ran.runId))?.status).toBe('lost');
  });
});
