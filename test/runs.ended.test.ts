import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/lib/logger.js';
import { EndedRuns, parseEnded } from '../src/runs/ended.js';
import { keys } from '../src/runs/keys.js';
import { RunStore } from '../src/runs/store.js';
import { startTestRedis } from './helpers/redis.js';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let waiterSide: Redis;
let writerSide: Redis;
let ended: EndedRuns;
let writer: RunStore;

beforeAll(async () => {
  redis = await startTestRedis();
  // Two connections, as two daemons: the end is written by one and seen by the other.
  waiterSide = new Redis({ path: redis.path });
  writerSide = new Redis({ path: redis.path });
  writer = new RunStore(writerSide);
  ended = new EndedRuns(waiterSide, new RunStore(waiterSide), createLogger({ level: 'silent' }));
  ended.start();
});
afterAll(async () => {
  await ended.stop();
  waiterSide.disconnect();
  writerSide.disconnect();
  await redis?.stopAndClean();
});

const newRun = async (key: string) => (await writer.create({ task: 't', trigger: 'manual', dedupeKey: key })).runId;

describe('the ended-runs stream', () => {
  it('gets one entry per terminal status, written with the status itself', async () => {
    const before = await writerSide.xlen(keys.ended());
    const id = await newRun('t:1');
    await writer.transition(id, 'starting', { from: ['queued'] });
    await writer.transition(id, 'running', { from: ['starting'] });
    expect(await writerSide.xlen(keys.ended())).toBe(before);
    await writer.transition(id, 'succeeded', { from: ['running'] });
    // A refused late write adds nothing.
    await writer.transition(id, 'failed', { from: ['running'] });
    const entries = parseEnded([[keys.ended(), await writerSide.xrange(keys.ended(), '-', '+')]]);
    expect(entries.filter((e) => e.run === id).map((e) => [e.task, e.status])).toEqual([['t', 'succeeded']]);
  });

  it('records a run created skipped as ended', async () => {
    const { runId } = await writer.create({ task: 't', trigger: 'cron', dedupeKey: 't:skip' }, { status: 'skipped', reason: 'paused' });
    const entries = parseEnded([[keys.ended(), await writerSide.xrange(keys.ended(), '-', '+')]]);
    expect(entries.find((e) => e.run === runId)?.status).toBe('skipped');
  });
});

describe('EndedRuns.waitFor', () => {
  it('wakes when another connection ends the run, with output and log tail', async () => {
    const id = await newRun('t:2');
    const waiting = ended.waitFor(id, 10_000);
    await new Promise((r) => setTimeout(r, 100));
    await writer.setOutput(id, '{"ok":true}', undefined);
    await writer.setLogTail(id, 'hello\n');
    const t0 = Date.now();
    await writer.transition(id, 'succeeded', { from: ['queued'] });
    const run = await waiting;
    expect(run).toMatchObject({ id, status: 'succeeded', output: '{"ok":true}', logTail: 'hello\n' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('answers at once for a run that had already ended', async () => {
    const id = await newRun('t:3');
    await writer.transition(id, 'cancelled', { from: ['queued'] });
    expect((await ended.waitFor(id, 5_000))?.status).toBe('cancelled');
  });

  it('gives up after its timeout while the run goes on', async () => {
    const id = await newRun('t:4');
    const t0 = Date.now();
    expect(await ended.waitFor(id, 300)).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it('wakes every waiter of one run, and many runs at once', async () => {
    const ids = await Promise.all([0, 1, 2, 3, 4].map((i) => newRun(`t:many-${i}`)));
    const waits = ids.flatMap((id) => [ended.waitFor(id, 10_000), ended.waitFor(id, 10_000)]);
    await new Promise((r) => setTimeout(r, 100));
    for (const id of ids) await writer.transition(id, 'failed', { from: ['queued'] });
    const runs = await Promise.all(waits);
    expect(runs.map((r) => r?.status)).toEqual(Array(10).fill('failed'));
  });

  it('keeps no waiter once a wait is answered, however it was answered', async () => {
    // A webhook's `respond: result` redelivered, a skipped run, a queue redelivery: waits on
    // runs that had already ended, answered by the first look at the record.
    const before = ended.waiting;
    const id = await newRun('t:leak');
    await writer.transition(id, 'succeeded', { from: ['queued'] });
    // Past the stream's entry for it, so only the first look at the record answers.
    await new Promise((r) => setTimeout(r, 300));
    const answers = await Promise.all(Array.from({ length: 1000 }, () => ended.waitFor(id, 60_000)));
    expect(answers.every((r) => r?.status === 'succeeded')).toBe(true);
    expect(ended.waiting).toBe(before);
    // And a run that has no record, and one that ends while waited for.
    expect(await ended.waitFor('no-such-run', 60_000)).toBeUndefined();
    const later = await newRun('t:leak-later');
    const waiting = ended.waitFor(later, 60_000);
    await new Promise((r) => setTimeout(r, 100));
    await writer.transition(later, 'failed', { from: ['queued'] });
    expect((await waiting)?.status).toBe('failed');
    expect(ended.waiting).toBe(before);
  });
});
