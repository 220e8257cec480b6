import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../src/runs/store.js';
import { startTestRedis } from './helpers/redis.js';

let server: Awaited<ReturnType<typeof startTestRedis>>;
let redis: Redis;
let store: RunStore;

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis({ path: server.path });
  store = new RunStore(redis);
});
afterAll(async () => {
  redis.disconnect();
  await server.stopAndClean();
});

describe('run records', () => {
  it('creates one run per dedupe key, even when many callers race for it', async () => {
    const request = { task: 'sync', trigger: 'cron' as const, dedupeKey: 'sync:cron:1700000000000', scheduledAt: 1700000000000 };
    // Separate connections, like separate daemons.
    const clients = Array.from({ length: 8 }, () => new Redis({ path: server.path }));
    const others = clients.map((c) => new RunStore(c));
    // Closed here: left open, they reconnect to the stopped server and log after the file ends.
    const results = await Promise.all(others.map((s) => s.create(request, { cronMarker: true }))).finally(() =>
      clients.forEach((c) => c.disconnect()),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.runId)).size).toBe(1);
    expect(await redis.get('runlet:cron:sync:last')).toBe('1700000000000');
    const run = await store.get(results[0].runId);
    expect(run).toMatchObject({ task: 'sync', trigger: 'cron', status: 'queued', scheduledAt: 1700000000000 });
    expect(run?.transitions.map((t) => t.status)).toEqual(['queued']);
  });

  it('the cron marker only moves forward', async () => {
    await store.create({ task: 'm', trigger: 'cron', dedupeKey: 'm:cron:2000', scheduledAt: 2000 }, { cronMarker: true });
    await store.create({ task: 'm', trigger: 'cron', dedupeKey: 'm:cron:1000', scheduledAt: 1000 }, { cronMarker: true });
    expect(await redis.get('runlet:cron:m:last')).toBe('2000');
  });

  it('guards transitions: only from allowed statuses, and terminal statuses are final', async () => {
    const { runId } = await store.create({ task: 't', trigger: 'manual', dedupeKey: 't:manual:1' });
    expect(await store.transition(runId, 'running', { from: ['starting'] })).toBe(false);
    expect(await store.transition(runId, 'starting', { from: ['queued'] })).toBe(true);
    expect(await store.transition(runId, 'starting', { from: ['queued'] })).toBe(false); // a second claimer loses
    expect(await store.transition(runId, 'running', { from: ['starting'], fields: { containerId: 'abc', startedAt: 10 } })).toBe(true);
    expect(await store.transition(runId, 'succeeded', { from: '*', fields: { exitCode: 0, finishedAt: 20 } })).toBe(true);
    expect(await store.transition(runId, 'failed', { from: '*', reason: 'late writer' })).toBe(false);
    const run = await store.get(runId);
    expect(run?.status).toBe('succeeded');
    expect(run?.exitCode).toBe(0);
    expect(run?.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'succeeded']);
    expect(run?.transitions.every((t) => typeof t.at === 'number')).toBe(true);
  });

  it('a lost run gets its real outcome when its container is settled later', async () => {
    const { runId } = await store.create({ task: 't', trigger: 'manual', dedupeKey: 't:manual:2' });
    await store.transition(runId, 'starting', { from: ['queued'] });
    await store.transition(runId, 'running', { from: ['starting'] });
    expect(await store.transition(runId, 'lost', { from: ['starting', 'running'], reason: 'node gone' })).toBe(true);
    expect(await store.transition(runId, 'succeeded', { from: '*' })).toBe(true);
    expect(await store.transition(runId, 'lost', { from: '*' })).toBe(false);
  });

  it('retention keeps the newest N runs of a task and never deletes one in progress', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { runId } = await store.create({ task: 'keep', trigger: 'manual', dedupeKey: `keep:manual:${i}` }, { now: 1000 + i });
      ids.push(runId);
    }
    for (const id of ids.slice(1)) await store.transition(id, 'succeeded', { from: '*' });
    await store.setLogTail(ids[2], 'some output');
    // ids[0] is still queued: kept although it is the oldest.
    expect(await store.trim('keep', 3)).toBe(2);
    const left = (await store.list({ task: 'keep', limit: 100 })).map((r) => r.id);
    expect(left).toEqual([ids[5], ids[4], ids[3], ids[0]]);
    expect(await redis.exists(`runlet:run:${ids[2]}`, `runlet:run:${ids[2]}:logs`, `runlet:run:${ids[2]}:transitions`)).toBe(0);
  });

  it('lists newest first, filtered by status and trigger', async () => {
    const a = await store.create({ task: 'l', trigger: 'manual', dedupeKey: 'l:manual:a' }, { now: 5000 });
    const b = await store.create({ task: 'l', trigger: 'cron', dedupeKey: 'l:cron:b', scheduledAt: 1 }, { now: 5001 });
    await store.transition(a.runId, 'failed', { from: '*', fields: { exitCode: 3 } });
    expect((await store.list({ task: 'l' })).map((r) => r.id)).toEqual([b.runId, a.runId]);
    expect((await store.list({ task: 'l', status: ['failed'] })).map((r) => r.id)).toEqual([a.runId]);
    expect((await store.list({ task: 'l', trigger: 'cron' })).map((r) => r.id)).toEqual([b.runId]);
  });

  it('keeps only the last 64 KiB of a log tail', async () => {
    const { runId } = await store.create({ task: 'big', trigger: 'manual', dedupeKey: 'big:manual:1' });
    await store.setLogTail(runId, 'x'.repeat(100_000) + 'END');
    const tail = await store.getLogTail(runId);
    expect(tail?.length).toBe(65536);
    expect(tail?.endsWith('END')).toBe(true);
  });
});
