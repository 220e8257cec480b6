import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunletConfig } from '../src/config/types.js';
import { TaskGate } from '../src/dispatch/gate.js';
import { gateKeys, keys } from '../src/runs/keys.js';
import { configFrom } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// The task gate against a real Redis: a task's cluster-wide limit, kept beside the pool
// queues (dispatch/gate.ts). Several TaskGate objects on one Redis stand for several daemons.

let server: Awaited<ReturnType<typeof startTestRedis>>;
let redis: Redis;
const logger = pino({ level: 'silent' });

function config(concurrency: number): RunletConfig {
  return configFrom(`
defaults: { image: runlet/busybox:local }
tasks:
  one: { concurrency: ${concurrency}, command: ["true"] }
  free: { overlap: allow, concurrency: 1, command: ["true"] }
`);
}

/** Records only what the gate reads: a status (and a deadline). */
async function record(id: string, status: string, deadline?: number): Promise<void> {
  await redis.hset(keys.run(id), { id, task: 'one', status, ...(deadline !== undefined && { deadline: String(deadline) }) });
}

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis({ path: server.path });
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stopAndClean();
});

describe('the task gate', () => {
  it('admits up to the limit, parks the rest in arrival order, and admits them one per freed slot', async () => {
    await redis.flushall();
    const gate = new TaskGate(redis, config(2), logger);
    const admitted = [];
    for (const id of ['r1', 'r2', 'r3', 'r4', 'r5']) admitted.push(await gate.admit('one', id, 1000 + admitted.length));
    expect(admitted).toEqual([true, true, false, false, false]);
    expect(await gate.counts('one')).toEqual({ active: 2, waiting: 3 });
    // Re-admitting a run that holds a slot (outbox recovery) or is parked changes nothing.
    expect(await gate.admit('one', 'r1')).toBe(true);
    expect(await gate.admit('one', 'r4')).toBe(false);
    expect(await gate.counts('one')).toEqual({ active: 2, waiting: 3 });

    expect(await gate.free('one', 'r2')).toEqual(['r3']);
    expect(await gate.free('one', 'r1')).toEqual(['r4']);
    // The admitted runs are in the outbox: their job is added even if the freeing daemon dies now.
    expect(await redis.zrange(keys.outbox(), 0, -1)).toEqual(expect.arrayContaining(['r3', 'r4']));
    expect(await gate.counts('one')).toEqual({ active: 2, waiting: 1 });
  });

  it('a new run waits behind parked ones even when a slot is free for an instant', async () => {
    await redis.flushall();
    const gate = new TaskGate(redis, config(1), logger);
    expect(await gate.admit('one', 'a', 1)).toBe(true);
    expect(await gate.admit('one', 'b', 2)).toBe(false);
    // The free admits b in the same step, so c, arriving after, finds no slot.
    expect(await gate.free('one', 'a')).toEqual(['b']);
    expect(await gate.admit('one', 'c', 3)).toBe(false);
  });

  it('the same end, seen by every daemon, admits one run, not one per daemon', async () => {
    await redis.flushall();
    const daemons = [1, 2, 3].map(() => new TaskGate(redis, config(1), logger));
    expect(await daemons[0]!.admit('one', 'x')).toBe(true);
    for (const id of ['y', 'z']) expect(await daemons[1]!.admit('one', id)).toBe(false);
    const frees = await Promise.all(daemons.map((g) => g.free('one', 'x')));
    expect(frees.flat()).toEqual(['y']);
    expect(await daemons[2]!.counts('one')).toEqual({ active: 1, waiting: 1 });
  });

  it('overlap allow has no limit; a cancelled parked run leaves its place', async () => {
    await redis.flushall();
    const gate = new TaskGate(redis, config(1), logger);
    for (const id of ['f1', 'f2', 'f3']) expect(await gate.admit('free', id)).toBe(true);
    expect(await gate.admit('one', 'p1')).toBe(true);
    expect(await gate.admit('one', 'p2')).toBe(false);
    expect(await gate.admit('one', 'p3')).toBe(false);
    expect(await gate.free('one', 'p2')).toEqual([]); // cancelled while parked
    expect(await gate.free('one', 'p1')).toEqual(['p3']);
  });

  it('the sweep frees slots of runs that ended unseen and of runs gone, but a lost run only after its deadline', async () => {
    await redis.flushall();
    const gate = new TaskGate(redis, config(4), logger);
    const now = Date.now();
    for (const id of ['done', 'gone', 'lost', 'live']) expect(await gate.admit('one', id)).toBe(true);
    expect(await gate.admit('one', 'next1')).toBe(false);
    expect(await gate.admit('one', 'next2')).toBe(false);
    await record('done', 'succeeded');
    await record('lost', 'lost', now + 60_000); // its container may still run on a frozen node
    await record('live', 'running');
    await record('next1', 'queued');
    await record('next2', 'queued');
    const admittedBySweep: string[] = [];
    gate.onAdmitted = async (_task, ids) => void admittedBySweep.push(...ids);
    // 'done' ended while no daemon read its end; 'gone' has no record any more.
    expect(await gate.sweep(now)).toBe(2);
    expect(admittedBySweep).toEqual(['next1', 'next2']);
    expect((await redis.zrange(gateKeys.slots('one'), 0, -1)).sort()).toEqual(['live', 'lost', 'next1', 'next2']);
    // After the deadline the lost run's slot goes too.
    expect(await gate.sweep(now + 61_000)).toBe(1);
    expect(await redis.zrange(gateKeys.slots('one'), 0, -1)).not.toContain('lost');
  });

  it('a raised limit admits parked runs at the next sweep; the sweep reads only tasks with runs in progress', async () => {
    await redis.flushall();
    const low = new TaskGate(redis, config(1), logger);
    expect(await low.admit('one', 'h')).toBe(true);
    expect(await low.admit('one', 'w1')).toBe(false);
    expect(await low.admit('one', 'w2')).toBe(false);
    for (const id of ['h', 'w1', 'w2']) await record(id, 'queued');
    const high = new TaskGate(redis, config(3), logger);
    const admitted: string[] = [];
    high.onAdmitted = async (_t, ids) => void admitted.push(...ids);
    await high.sweep();
    expect(admitted).toEqual(['w1', 'w2']);
    expect(await redis.smembers(gateKeys.slotted())).toEqual(['one']);
    expect(await redis.smembers(gateKeys.parkedTasks())).toEqual([]);
  });
});

describe('runs in progress are read from the gate, not by scanning the history', () => {
  it('a listing of queued/starting/running runs reads those runs only, however long the history', async () => {
    await redis.flushall();
    const { RunStore } = await import('../src/runs/store.js');
    const store = new RunStore(redis);
    const gate = new TaskGate(redis, config(1), logger);
    // 2,000 finished runs of history, then one running and one parked.
    for (let i = 0; i < 2000; i++)
      await store.create({ task: 'one', trigger: 'manual', dedupeKey: `old-${i}` }, { status: 'skipped', reason: 'old' });
    const running = await store.create({ task: 'one', trigger: 'manual', dedupeKey: 'running' });
    const parked = await store.create({ task: 'one', trigger: 'manual', dedupeKey: 'parked' });
    expect(await gate.admit('one', running.runId)).toBe(true);
    expect(await gate.admit('one', parked.runId)).toBe(false);
    await redis.hset(keys.run(running.runId), 'status', 'running');

    const hgetallCalls = async () => Number(/cmdstat_hgetall:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
    const before = await hgetallCalls();
    const list = await store.list({ status: ['queued', 'starting', 'running'], limit: 1000 });
    const read = (await hgetallCalls()) - before;
    expect(list.map((r) => r.id)).toEqual([parked.runId, running.runId]);
    expect((await store.list({ status: ['running'] })).map((r) => r.id)).toEqual([running.runId]);
    // The two runs (a hash each, and their transitions), not the 2,000 finished ones.
    expect(read).toBeLessThanOrEqual(4);
  });
});
