import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MongoTriggerConfig, TaskConfig } from '../src/config/types.js';
import type { Enqueued } from '../src/dispatch/enqueue.js';
import type { HttpDeps } from '../src/http/deps.js';
import { buildServer } from '../src/http/server.js';
import { createLogger } from '../src/lib/logger.js';
import type { RunRequest } from '../src/runs/types.js';
import { resetStream, StreamCursor, tokenFromText, tokenKey } from '../src/triggers/mongo/cursor.js';
import { changeRequest } from '../src/triggers/mongo/payload.js';
import { streamKeys } from '../src/runs/keys.js';
import { StreamLease } from '../src/triggers/mongo/lease.js';
import { HistoryLost, type ChangeEvent, type ChangeFeed, type ChangeSource, type FeedItem } from '../src/triggers/mongo/source.js';
import { readState, StreamState } from '../src/triggers/mongo/state.js';
import { StreamWatcher, UNCONFIGURED_REASON, type WatcherDeps } from '../src/triggers/mongo/watcher.js';
import { configFrom, LogLines, useDaemon } from './helpers/daemon.js';
import { until } from './helpers/until.js';

// The lease, cursor and dedupe logic against a real Redis and real runs (an in-process
// daemon's submit), with MongoDB replaced by an in-test change source. The driver side is
// in trigger.mongo.real.test.ts.

const LEASE_MS = 1_500;

const YAML = `
defaults: { image: runlet/busybox:local, timeout: 30s }
tasks:
  takeover: { command: ["true"], overlap: allow }
  crashy: { command: ["true"], overlap: allow }
  lost: { command: ["true"], overlap: allow }
  flaky: { command: ["true"], overlap: allow }
  quiet: { command: ["true"], overlap: allow }
  plain: { command: ["true"] }
`;

const mongoCfg = (over: Partial<MongoTriggerConfig> = {}): MongoTriggerConfig => ({
  url: 'mongodb://fake.invalid/?replicaSet=rs0',
  db: 'studo',
  collection: 'appStarts',
  operations: ['insert', 'update', 'replace', 'delete'],
  fullDocument: 'updateLookup',
  ...over,
});

const tok = (n: number) => ({ _data: `T${String(n).padStart(6, '0')}` });
const posOf = (token: unknown) => Number((token as { _data: string })._data.slice(1));

/**
 * A collection's change history as MongoDB keeps it: event i has token T(i+1), and a stream
 * opened after T(k) starts at event k. `oldest` models the oplog rolling over: opening from
 * a token before it fails with HistoryLost. `failOpens` makes the next opens fail (transient).
 */
class FakeHistory {
  readonly log: ChangeEvent[] = [];
  oldest = 0;
  failOpens: Error[] = [];
  /** Every open of any source on this history, in the order they happened (sources race for the lease). */
  readonly opens: unknown[] = [];
  /** Set by interrupt(): the open feeds fail with it (a dropped connection). */
  fault?: Error;
  private readonly waiters = new Set<() => void>();

  insert(n: number): ChangeEvent[] {
    const added: ChangeEvent[] = [];
    for (let k = 0; k < n; k++) {
      const i = this.log.length;
      const ev: ChangeEvent = {
        token: tok(i + 1),
        operationType: 'insert',
        ns: { db: 'studo', coll: 'appStarts' },
        documentKey: { _id: { $oid: `65f0000000000000000${String(i).padStart(5, '0')}` } },
        fullDocument: { _id: { $oid: `65f0000000000000000${String(i).padStart(5, '0')}` }, n: i },
        clusterTime: { t: Math.floor(Date.now() / 1000), i: i + 1 },
      };
      this.log.push(ev);
      added.push(ev);
    }
    for (const w of this.waiters) w();
    return added;
  }

  interrupt(err: Error): void {
    this.fault = err;
    for (const w of this.waiters) w();
  }

  wait(): { promise: Promise<void>; cancel: () => void } {
    let done!: () => void;
    const promise = new Promise<void>((r) => (done = r));
    const w = () => {
      this.waiters.delete(w);
      done();
    };
    this.waiters.add(w);
    return { promise, cancel: w };
  }
}

class FakeSource implements ChangeSource {
  readonly opens: Array<unknown> = [];
  constructor(private readonly history: FakeHistory) {}

  open(resumeToken: unknown | undefined): ChangeFeed {
    this.opens.push(resumeToken);
    this.history.opens.push(resumeToken);
    const h = this.history;
    let closed = false;
    let waiting: { cancel: () => void } | undefined;
    return {
      close: async () => {
        closed = true;
        waiting?.cancel();
      },
      async *[Symbol.asyncIterator](): AsyncIterator<FeedItem> {
        const fail = h.failOpens.shift();
        if (fail) throw fail;
        let i = resumeToken === undefined ? h.log.length : posOf(resumeToken);
        if (i < h.oldest) throw new HistoryLost(`resume point T${i} is older than the oldest change kept (T${h.oldest})`);
        // As the real source does: a fresh stream's position first, before any change.
        if (resumeToken === undefined) yield { checkpoint: true, token: tok(i) };
        while (!closed) {
          if (i < h.log.length) {
            yield h.log[i++]!;
            continue;
          }
          const w = h.wait();
          waiting = w;
          await w.promise;
          const fault = h.fault;
          h.fault = undefined;
          if (fault && !closed) throw fault;
        }
      },
    };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mongo change-stream watcher: lease, cursor and dedupe on Redis (in-test change source)', () => {
  const ctx = useDaemon(YAML);
  const base = configFrom(YAML);
  const watchers: StreamWatcher[] = [];
  let app: FastifyInstance;
  const httpLogs = new LogLines();
  /** Every submit any watcher made, with what it answered. */
  const submits: Array<{ by: string; request: RunRequest; res: Enqueued }> = [];

  const taskWith = (name: string, over: Partial<MongoTriggerConfig> = {}): TaskConfig => ({ ...base.tasks[name]!, mongo: mongoCfg(over) });

  function watcher(
    daemonId: string,
    task: TaskConfig,
    source: ChangeSource | undefined,
    opts: { logs?: LogLines; submit?: (r: RunRequest) => Promise<Enqueued> } = {},
  ): StreamWatcher {
    const deps: WatcherDeps = {
      redis: ctx.daemon.redis,
      identity: { node: 'test-node', clusterId: ctx.daemon.identity.clusterId, daemonId },
      logger: createLogger({ level: 'debug', destination: opts.logs ?? new LogLines() }),
      submit:
        opts.submit ??
        (async (request) => {
          const res = await ctx.daemon.submit(request);
          submits.push({ by: daemonId, request, res });
          return res;
        }),
    };
    const w = new StreamWatcher(deps, task, source, { leaseMs: LEASE_MS, backoffMinMs: 100, backoffMaxMs: 400 });
    watchers.push(w);
    return w;
  }

  const runsOf = async (task: string) => ctx.daemon.store.list({ task, limit: 1000 });
  const state = (task: string) => readState(ctx.daemon.redis, task);

  beforeAll(async () => {
    // The ops API on the daemon's Redis, with a config in which the tasks have mongo:.
    const config = {
      ...base,
      tasks: {
        ...base.tasks,
        takeover: taskWith('takeover'),
        crashy: taskWith('crashy'),
        lost: taskWith('lost'),
        quiet: taskWith('quiet', { url: undefined }),
      },
    };
    app = buildServer(
      {
        config,
        redis: ctx.daemon.redis,
        store: ctx.daemon.store,
        resetStream: (task: string) => resetStream(ctx.daemon.redis, task),
      } as unknown as HttpDeps,
      createLogger({ level: 'warn', destination: httpLogs }),
    );
    await app.ready();
  });

  afterAll(async () => {
    await Promise.all(watchers.map((w) => w.stop()));
    await app?.close();
  });

  it('two daemons on one stream: one consumes; when it dies the other takes over within a lease period and resumes: each change makes exactly one run', async () => {
    const history = new FakeHistory();
    const task = taskWith('takeover');
    const srcA = new FakeSource(history);
    const srcB = new FakeSource(history);
    let handledByA = 0;
    let diedAt = 0;
    // A is slow and dies in the middle of a backlog, right after its 4th run is recorded.
    const a: StreamWatcher = watcher('daemon-A', task, srcA, {
      submit: async (request) => {
        await sleep(40);
        const res = await ctx.daemon.submit(request);
        submits.push({ by: 'daemon-A', request, res });
        if (++handledByA === 4) {
          diedAt = Date.now();
          void a.halt();
        }
        return res;
      },
    });
    const b = watcher('daemon-B', task, srcB);
    await a.start();
    await until('A watching', async () => (await state('takeover')).state === 'watching');
    await b.start();
    await sleep(LEASE_MS); // B has tried, and waits: only A consumes
    expect(srcA.opens).toEqual([undefined]);
    expect(srcB.opens).toEqual([]);
    expect((await state('takeover')).holder).toBe('daemon-A');

    const events = history.insert(10);
    await until('B opened', async () => srcB.opens.length === 1);
    const takeoverMs = Date.now() - diedAt;
    expect(takeoverMs).toBeLessThan(LEASE_MS + 500);
    // B opened after the last token A stored (A stored 3 or 4, depending on where it died).
    expect(posOf(srcB.opens[0])).toBeGreaterThanOrEqual(3);
    expect(posOf(srcB.opens[0])).toBeLessThanOrEqual(4);

    events.push(...history.insert(5));
    await until('15 changes handled', async () => (await state('takeover')).eventsTotal === 15);
    const st = await state('takeover');
    expect(st.state).toBe('watching');
    expect(st.holder).toBe('daemon-B');
    expect(st.fence).toBe(2);

    const runs = await runsOf('takeover');
    const keys = runs.map((r) => r.dedupeKey).sort();
    expect(keys).toEqual(events.map((e) => `takeover:mongo:${(e.token as { _data: string })._data}`).sort());
    expect(new Set(keys).size).toBe(15);
    expect(runs.every((r) => r.trigger === 'mongo' && r.cause === 'insert on studo.appStarts')).toBe(true);
    // A listing leaves the payload out (a key of its own): read with it.
    const first = (await ctx.daemon.store.get(runs.find((r) => r.dedupeKey === `takeover:mongo:T000001`)!.id, { withPayload: true }))!;
    expect(first.payload).toMatchObject({
      operationType: 'insert',
      ns: { db: 'studo', coll: 'appStarts' },
      documentKey: { _id: { $oid: expect.any(String) } },
      fullDocument: { n: 0 },
      clusterTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const created = submits.filter((s) => s.request.task === 'takeover' && s.res.created);
    expect(created).toHaveLength(15);
  });

  it('a crash after the run is recorded but before the token is stored: the next holder submits that change again and dedupe makes no second run', async () => {
    const history = new FakeHistory();
    const task = taskWith('crashy');
    let n = 0;
    const c: StreamWatcher = watcher('daemon-C', task, new FakeSource(history), {
      submit: async (request) => {
        const res = await ctx.daemon.submit(request);
        submits.push({ by: 'daemon-C', request, res });
        if (++n === 3) {
          void c.halt();
          throw new Error('simulated crash between submit and storing the token');
        }
        return res;
      },
    });
    const srcD = new FakeSource(history);
    const d = watcher('daemon-D', task, srcD);
    await c.start();
    await until('C watching', async () => (await state('crashy')).state === 'watching');
    await d.start();
    const events = history.insert(5);
    await until(
      '5 changes handled by D',
      async () => (await state('crashy')).eventsTotal === 5 && (await state('crashy')).holder === 'daemon-D',
    );

    expect(srcD.opens.map(posOf)).toEqual([2]); // the token of change 2: change 3's was never stored
    const third = `crashy:mongo:${(events[2]!.token as { _data: string })._data}`;
    const forThird = submits.filter((s) => s.request.dedupeKey === third);
    expect(forThird.map((s) => [s.by, s.res.created])).toEqual([
      ['daemon-C', true],
      ['daemon-D', false],
    ]);
    expect(forThird[1]!.res.runId).toBe(forThird[0]!.res.runId);
    const runs = await runsOf('crashy');
    expect(runs).toHaveLength(5);
    expect(new Set(runs.map((r) => r.dedupeKey)).size).toBe(5);
  });

  it('a deposed holder cannot store its token: the fence moved, so the cursor is not moved back', async () => {
    const redis = ctx.daemon.redis;
    const cursor = new StreamCursor(redis, 'fenced');
    const leaseA = new StreamLease(redis, 'fenced', 'daemon-A', 300);
    const leaseB = new StreamLease(redis, 'fenced', 'daemon-B', 300);
    const gotA = await leaseA.tryAcquire();
    if (!('fence' in gotA)) throw new Error('A should get the free lease');
    const heldA = leaseA.hold(gotA.fence);
    expect(await cursor.store(gotA.fence, tok(5), {})).toBe(true);
    expect('retryInMs' in (await leaseB.tryAcquire())).toBe(true);

    heldA.halt(); // A freezes (a long GC pause, a partition): it stops renewing
    await sleep(400);
    const gotB = await leaseB.tryAcquire();
    if (!('fence' in gotB)) throw new Error('B should get the expired lease');
    expect(gotB.fence).toBeGreaterThan(gotA.fence);
    expect(await cursor.store(gotB.fence, tok(7), {})).toBe(true);

    // A wakes up and goes on where it was, with the token of an older change.
    expect(await cursor.store(gotA.fence, tok(6), {})).toBe(false);
    expect(await new StreamState(redis, 'fenced').write(gotA.fence, { state: 'error', error: 'stale' })).toBe(false);
    expect(await cursor.load()).toEqual(tok(7));
    expect(tokenFromText((await redis.get(streamKeys.token('fenced')))!)).toEqual(tok(7));
    // Its renew fails, which is how a live watcher learns it must stop.
    const heldA2 = leaseA.hold(gotA.fence);
    await until('A told it lost the lease', async () => heldA2.isLost, 2_000);
    leaseB.hold(gotB.fence).halt();
  });

  it('history lost: reported as an error on GET /api/streams, logged once, not reopened in a loop; a reset makes it watch again from now', async () => {
    const history = new FakeHistory();
    const task = taskWith('lost');
    const e = watcher('daemon-E', task, new FakeSource(history));
    await e.start();
    await until('E watching', async () => (await state('lost')).state === 'watching');
    history.insert(2);
    await until('2 changes handled', async () => (await state('lost')).eventsTotal === 2);
    // E's daemon is down for long; meanwhile the oplog rolls past the token it stored.
    await e.halt();
    history.insert(3);
    history.oldest = 5;

    const logsF = new LogLines();
    const logsG = new LogLines();
    const srcF = new FakeSource(history);
    const srcG = new FakeSource(history);
    const opensBefore = history.opens.length;
    await watcher('daemon-F', task, srcF, { logs: logsF }).start();
    await watcher('daemon-G', task, srcG, { logs: logsG }).start();
    await until('stream in error', async () => (await state('lost')).state === 'error', LEASE_MS * 4);

    const res = await app.inject({ method: 'GET', url: '/api/streams' });
    expect(res.statusCode).toBe(200);
    const view = (res.json() as { streams: Array<Record<string, unknown>> }).streams.find((s) => s.task === 'lost')!;
    expect(view).toMatchObject({ state: 'error', db: 'studo', collection: 'appStarts', eventsTotal: 2, resumeToken: 'T000002' });
    expect(view.reason).toMatch(/older than the oldest change kept.*POST \/api\/streams\/lost\/reset restarts the stream from now/);
    expect(view.lastError).toMatchObject({ kind: 'historyLost' });
    expect(view.holder).toMatch(/^daemon-[FG]$/);

    // No restart loop: over a few seconds (several lease periods, many backoffs) one open in all.
    await sleep(LEASE_MS * 2);
    expect(srcF.opens.length + srcG.opens.length).toBe(1);
    const errors = [...logsF.lines, ...logsG.lines].filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toMatch(/history lost/);

    // Unknown task, task without mongo: 404 from the catalog.
    const unknown = await app.inject({ method: 'POST', url: '/api/streams/lots/reset' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: { code: 'TASK_NOT_FOUND', message: expect.stringContaining('did you mean "lost"') } });
    const plain = await app.inject({ method: 'POST', url: '/api/streams/plain/reset' });
    expect(plain.statusCode).toBe(404);
    expect(plain.json()).toMatchObject({ error: { code: 'STREAM_NOT_CONFIGURED' } });

    const reset = await app.inject({ method: 'POST', url: '/api/streams/lost/reset' });
    expect(reset.statusCode).toBe(200);
    expect(reset.json()).toMatchObject({ task: 'lost', reset: true, stream: { state: 'waiting', resumeToken: null } });
    expect(httpLogs.lines.find((l) => /change stream reset/.test(String(l.msg)))).toMatchObject({ level: 40, task: 'lost' });
    await until('watching again', async () => (await state('lost')).state === 'watching', LEASE_MS * 3);
    // Whichever of F and G holds the lease each time: first from the stored token, then from now.
    expect(history.opens.slice(opensBefore)).toEqual([tok(2), undefined]);
    history.insert(1);
    await until('the new change handled', async () => (await state('lost')).eventsTotal === 3);
    const keys = (await runsOf('lost')).map((r) => r.dedupeKey).sort();
    // Changes 3-5 fell off the oplog before anyone read them: the reset skips them, as documented.
    expect(keys).toEqual(['lost:mongo:T000001', 'lost:mongo:T000002', 'lost:mongo:T000006']);
    const after = (await app.inject({ method: 'GET', url: '/api/streams/lost' })).json() as Record<string, unknown>;
    expect(after).toMatchObject({ state: 'watching', reason: null, resumeToken: 'T000006', lastError: { kind: 'historyLost' } });
  });

  it('a transient failure reopens from the stored token with backoff (and again while it keeps failing): no change lost or doubled', async () => {
    const history = new FakeHistory();
    const src = new FakeSource(history);
    const logs = new LogLines();
    await watcher('daemon-H', taskWith('flaky'), src, { logs }).start();
    await until('H watching', async () => (await state('flaky')).state === 'watching');
    history.insert(2);
    await until('2 handled', async () => (await state('flaky')).eventsTotal === 2);

    // The connection drops, and the next two opens fail too (the server is still away).
    history.failOpens.push(new Error('connect ECONNREFUSED'), new Error('connect ECONNREFUSED'));
    history.interrupt(new Error('connection reset by peer'));
    history.insert(3);
    await until('5 handled', async () => (await state('flaky')).eventsTotal === 5);

    expect(src.opens).toEqual([undefined, tok(2), tok(2), tok(2)]);
    const warned = logs.lines.filter((l) => l.level === 40 && /reopening from the stored resume token/.test(String(l.msg)));
    expect(warned.map((l) => l.retryInMs)).toEqual([100, 200, 400]);
    const st = await state('flaky');
    expect(st).toMatchObject({ state: 'watching', errorKind: 'transient', error: 'connect ECONNREFUSED' });
    const runs = await runsOf('flaky');
    expect(runs.map((r) => r.dedupeKey).sort()).toEqual([1, 2, 3, 4, 5].map((n) => `flaky:mongo:${tok(n)._data}`));
  });

  it('an empty mongo.url: state unconfigured on the API and one warning, no lease and no loop', async () => {
    const logs = new LogLines();
    const w = watcher('daemon-U', taskWith('quiet', { url: undefined }), undefined, { logs });
    await w.start();
    await sleep(500);
    const view = (await app.inject({ method: 'GET', url: '/api/streams/quiet' })).json() as Record<string, unknown>;
    expect(view).toMatchObject({ state: 'unconfigured', reason: UNCONFIGURED_REASON, holder: null });
    expect(logs.lines).toHaveLength(1);
    expect(logs.lines[0]).toMatchObject({ level: 40, reason: UNCONFIGURED_REASON, task: 'quiet' });
    expect(await ctx.daemon.redis.exists(streamKeys.lease('quiet'))).toBe(0);
    await w.stop();
    expect(logs.lines).toHaveLength(1);
  });
});

describe('mongo: in a daemon with an empty url (the default wiring, over a real socket)', () => {
  const ctx = useDaemon(`
defaults: { image: runlet/busybox:local }
tasks:
  app-starts:
    command: ["true"]
    mongo: { url: "\${MONGO_URL:-}", db: studo, collection: appStarts, operations: insert }
`);

  it('is listed as unconfigured with its reason, warned about once, and never retried', async () => {
    const ready = ctx.daemon.logs.lines.find((l) => l.msg === 'runlet is running');
    expect(ready?.triggers).toContain('mongo studo.appStarts → app-starts');
    await sleep(300);
    const res = await fetch(`${ctx.daemon.url}/api/streams`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      streams: [
        expect.objectContaining({
          task: 'app-starts',
          db: 'studo',
          collection: 'appStarts',
          operations: ['insert'],
          state: 'unconfigured',
          reason: UNCONFIGURED_REASON,
          holder: null,
        }),
      ],
    });
    const warned = ctx.daemon.logs.lines.filter((l) => l.trigger === 'mongo');
    expect(warned).toEqual([expect.objectContaining({ level: 40, task: 'app-starts', reason: UNCONFIGURED_REASON })]);
  });
});

describe('mongo: one change → one run request (no Redis)', () => {
  const task = configFrom(YAML).tasks['takeover']!;
  const change: ChangeEvent = {
    token: { _data: '8265A1B2C3' },
    operationType: 'update',
    ns: { db: 'studo', coll: 'appStarts' },
    documentKey: { _id: { $oid: '65f000000000000000000001' } },
    fullDocument: { _id: { $oid: '65f000000000000000000001' }, blob: 'x'.repeat(2_000) },
    updateDescription: { updatedFields: { blob: 'x'.repeat(2_000) }, removedFields: [] },
    clusterTime: { t: 1_767_323_045, i: 3 },
  };

  it('dedupe key from the token, cause, and the change as payload', () => {
    const { request, omitted } = changeRequest(task, change);
    expect(omitted).toBeUndefined();
    expect(request).toMatchObject({
      task: 'takeover',
      trigger: 'mongo',
      dedupeKey: 'takeover:mongo:8265A1B2C3',
      cause: 'update on studo.appStarts',
    });
    expect(request.payload).toEqual({
      operationType: 'update',
      ns: { db: 'studo', coll: 'appStarts' },
      documentKey: change.documentKey,
      fullDocument: change.fullDocument,
      updateDescription: change.updateDescription,
      clusterTime: '2026-01-02T03:04:05.000Z',
    });
    // A token without a short _data string still makes a stable key.
    expect(tokenKey({ _data: 'a'.repeat(300) })).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(tokenKey({ _data: 'a'.repeat(300) })).toBe(tokenKey({ _data: 'a'.repeat(300) }));
  });

  it('a change larger than maxPayload still makes its run, without the document, and says why', () => {
    const { request, omitted } = changeRequest({ ...task, maxPayloadBytes: 1_000 }, change);
    expect(omitted).toMatch(/more than maxPayload \(1000 bytes\)/);
    expect(request.payload).toEqual({
      operationType: 'update',
      ns: change.ns,
      documentKey: change.documentKey,
      clusterTime: '2026-01-02T03:04:05.000Z',
      omitted,
    });
  });
});
