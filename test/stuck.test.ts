import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findStuck, type StreamInfo } from '../src/ops/stuck.js';
import type { RunRecord } from '../src/runs/types.js';
import { whyWaiting, type WaitFacts } from '../src/ops/waiting.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

const UNIT = configFrom(`
defaults: { image: runlet/busybox:local, timeout: 1m, killGrace: 10s }
stuck: { queued: 5m }
tasks:
  sync: { concurrency: 2 }
  ticker: { schedule: "* * * * *", jitter: 30s }
`);

const T0 = Date.parse('2026-01-01T00:00:00Z');

function record(over: Partial<RunRecord> & Pick<RunRecord, 'id' | 'task' | 'status'>): RunRecord {
  return {
    trigger: 'manual',
    dedupeKey: over.id,
    createdAt: T0,
    updatedAt: T0,
    transitions: [{ status: 'queued', at: T0 }],
    attempts: [],
    ...over,
  };
}

function facts(now: number, over: Partial<WaitFacts> = {}): WaitFacts {
  return { now, tasks: UNIT.tasks, active: new Map(), blocks: new Map(), liveDaemons: 1, ...over };
}

describe('findStuck and whyWaiting (unit)', () => {
  it('a run past timeout + killGrace + 30 s is running_past_deadline; one inside it is not', () => {
    const now = T0 + 60_000 + 10_000 + 30_000 + 1;
    const late = record({ id: 'late', task: 'sync', status: 'running', startedAt: T0, node: 'node-a' });
    const fine = record({ id: 'fine', task: 'sync', status: 'running', startedAt: T0 + 5_000 });
    const stuck = findStuck({ config: UNIT, now, runs: [late, fine], facts: facts(now), streams: [] });
    expect(stuck).toHaveLength(1);
    expect(stuck[0]).toMatchObject({ kind: 'running_past_deadline', task: 'sync', runId: 'late', since: T0 + 100_000 });
    expect(stuck[0]!.detail).toContain('on node-a');
  });

  it('a queued run waiting for its retry or its jitter is never stuck; a due one past the threshold is, with why', () => {
    const now = T0 + 10 * 60_000;
    const retrying = record({ id: 'r', task: 'sync', status: 'queued', attempt: 2, maxAttempts: 3, retryAt: now + 60_000 });
    const jittered = record({
      id: 'j',
      task: 'ticker',
      trigger: 'cron',
      status: 'queued',
      createdAt: now - 10_000,
      transitions: [{ status: 'queued', at: now - 10_000 }],
    });
    const waiting = record({ id: 'w', task: 'sync', status: 'queued' });
    const f = facts(now, { active: new Map([['sync', 2]]) });
    expect(whyWaiting(retrying, f)).toMatchObject({ code: 'retry_backoff', text: 'retry backoff: attempt 2 of 3 is due in 1m' });
    expect(whyWaiting(jittered, f).code).toBe('jitter');
    expect(whyWaiting(waiting, f)).toEqual({ code: 'task_concurrency', text: 'task concurrency: 2 of 2 in progress cluster-wide' });
    const stuck = findStuck({ config: UNIT, now, runs: [retrying, jittered, waiting], facts: f, streams: [] });
    expect(stuck.map((s) => s.runId)).toEqual(['w']);
    expect(stuck[0]).toMatchObject({ kind: 'queued_too_long', since: T0, waiting: { code: 'task_concurrency' } });
    expect(stuck[0]!.detail).toBe('queued for 10m: task concurrency: 2 of 2 in progress cluster-wide');
  });

  it('admission reasons of every live daemon (per pool) explain the wait, named by node', () => {
    const run = record({ id: 'w', task: 'sync', status: 'queued' });
    const block = {
      daemon: 'd1',
      node: 'node-a',
      at: T0,
      reason: 'the node has 0 B of its 512 MiB memory budget free; the run needs 256 MiB',
    };
    expect(whyWaiting(run, facts(T0, { blocks: new Map([['default', [block]]]) }))).toEqual({
      code: 'admission',
      text: 'memory budget: node node-a has 0 B of its 512 MiB memory budget free; the run needs 256 MiB',
    });
    // Another live daemon could take it: it waits for a worker, not for memory.
    expect(whyWaiting(run, facts(T0, { blocks: new Map([['default', [block]]]), liveDaemons: 2 })).code).toBe('free_worker');
  });

  it('a stream in error is stream_stalled at once; one nobody holds only after a minute', () => {
    const streams: StreamInfo[] = [
      { task: 'sync', state: 'error', error: 'resume token no longer in the oplog', errorAt: T0 },
      { task: 'ticker', state: 'waiting' },
    ];
    const memory = new Map<string, number>();
    const first = findStuck({ config: UNIT, now: T0 + 1_000, runs: [], facts: facts(T0), streams, unheldSince: memory });
    expect(first).toEqual([
      {
        id: `stream_stalled:sync:error:${T0}`,
        kind: 'stream_stalled',
        task: 'sync',
        since: T0,
        detail: 'change stream failed: resume token no longer in the oplog',
      },
    ]);
    const later = findStuck({ config: UNIT, now: T0 + 62_000, runs: [], facts: facts(T0), streams, unheldSince: memory });
    expect(later.map((s) => [s.kind, s.task])).toEqual([
      ['stream_stalled', 'sync'],
      ['stream_stalled', 'ticker'],
    ]);
    // Held again: forgotten, so a later gap counts from its own start.
    findStuck({
      config: UNIT,
      now: T0 + 63_000,
      runs: [],
      facts: facts(T0),
      streams: [{ task: 'ticker', state: 'watching', holder: 'd1' }],
      unheldSince: memory,
    });
    expect(memory.size).toBe(0);
  });
});

describe('a run held back by its pool memory budget, through a running daemon', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let daemon: TestDaemon;
  let server: Server;
  const alerts: Array<{ event: string; text: string; stuck?: { kind: string; detail: string } }> = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        alerts.push(JSON.parse(text));
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    redis = await startTestRedis();
    const config = configFrom(`
defaults: { image: runlet/busybox:local, timeout: 1m }
stuck: { queued: 1s }
pools:
  big: { concurrency: 4, memory: 64m }
tasks:
  hog: { command: [sh, -c, 'sleep 30'], memory: 48m, pool: big, concurrency: 2, killGrace: 0s }
alerts:
  - url: ${url}
    on: [stuck]
`);
    daemon = await startTestDaemon({ config, redisUrl: redis.url, alerts: { stuckScanMs: 1_000 } });
  });
  afterAll(async () => {
    await daemon?.stop();
    if (daemon) await removeClusterContainers(daemon.identity.clusterId);
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await redis?.stopAndClean();
  });

  it('is listed by GET /api/stuck as queued_too_long naming the memory budget, shown in /api/status, and alerted once', async () => {
    const first = (await daemon.submit({ task: 'hog', trigger: 'manual', dedupeKey: 'hog:manual:1' })).runId;
    await until('the first run to run', async () => ((await daemon.store.get(first))?.status === 'running' ? true : undefined));
    const second = (await daemon.submit({ task: 'hog', trigger: 'manual', dedupeKey: 'hog:manual:2' })).runId;

    const item = await until('the second run to be stuck', async () => {
      const body = (await (await fetch(`${daemon.url}/api/stuck`)).json()) as {
        stuck: Array<{ kind: string; runId: string | null; detail: string; waiting: { code: string } | null }>;
      };
      return body.stuck.find((s) => s.runId === second);
    });
    expect(item.kind).toBe('queued_too_long');
    expect(item.waiting?.code).toBe('admission');
    expect(item.detail).toMatch(
      /memory budget: pool "big" has 16 MiB of its 64 MiB memory budget free on test-node; the run needs 48 MiB$/,
    );

    const status = (await (await fetch(`${daemon.url}/api/status`)).json()) as {
      queued: Array<{ id: string; waitingMs: number; waitReason: string; waitCode: string }>;
    };
    const queued = status.queued.find((q) => q.id === second);
    expect(queued?.waitCode).toBe('admission');
    expect(queued?.waitReason).toContain('memory budget');
    expect(queued?.waitingMs).toBeGreaterThan(1_000);

    await until('the stuck alert', () => alerts.find((a) => a.stuck?.kind === 'queued_too_long'));
    // Several scans later, still one alert for it.
    await new Promise((r) => setTimeout(r, 3_000));
    const mine = alerts.filter((a) => a.event === 'stuck' && a.text.includes(second));
    expect(mine).toHaveLength(1);
    expect(mine[0]!.text).toMatch(/^:warning: runlet: hog run \S+ is stuck \(queued_too_long\): queued for/);
    // The first run is on time: not stuck, not alerted.
    expect(alerts.filter((a) => a.text.includes(first))).toHaveLength(0);

    await fetch(`${daemon.url}/api/runs/${second}/cancel`, { method: 'POST' });
    await fetch(`${daemon.url}/api/runs/${first}/cancel`, { method: 'POST' });
    await daemon.waitForEnd(first);
  });
});
