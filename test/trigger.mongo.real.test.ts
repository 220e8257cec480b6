import { MongoClient, MongoNetworkError, MongoServerError, type Collection } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MongoTriggerConfig, TaskConfig } from '../src/config/types.js';
import { createLogger } from '../src/lib/logger.js';
import type { RunRecord } from '../src/runs/types.js';
import { classify, MongoSource, pipelineOf } from '../src/triggers/mongo/mongo-source.js';
import { HistoryLost, Invalidated } from '../src/triggers/mongo/source.js';
import { readState } from '../src/triggers/mongo/state.js';
import { StreamWatcher, type WatcherDeps } from '../src/triggers/mongo/watcher.js';
import { configFrom, LogLines, useDaemon } from './helpers/daemon.js';
import { until } from './helpers/until.js';

// The driver side against a real replica set (change streams need one). Without MONGO_URL
// this file is skipped, and says so in one line that is hard to miss.
const MONGO_URL = process.env.MONGO_URL;
const SKIPPED = 'SKIPPED: MONGO_URL is not set';
if (!MONGO_URL) {
  console.warn(
    '\n*** MongoDB tests SKIPPED: MONGO_URL is not set. Run: mongod --replSet rs0 --port 27017 --dbpath /tmp/rs0 & mongosh --eval "rs.initiate()"; MONGO_URL=mongodb://127.0.0.1:27017/?replicaSet=rs0 npm test ***\n',
  );
}

const LEASE_MS = 1_500;
const YAML = `
defaults: { image: runlet/busybox:local, timeout: 30s }
tasks:
  app-starts: { command: ["true"], overlap: allow }
`;

describe.skipIf(!MONGO_URL)(
  `mongo change streams against a real replica set (${MONGO_URL ? MONGO_URL.replace(/\/\/[^@]*@/, '//***@') : SKIPPED})`,
  () => {
    const ctx = useDaemon(YAML);
    const base = configFrom(YAML);
    // A database of this run's own, so runs of the suite never see each other's changes.
    const dbName = `runlet_test_${process.pid}_${Date.now().toString(36)}`;
    const mongo: MongoTriggerConfig = {
      url: MONGO_URL!,
      db: dbName,
      collection: 'appStarts',
      operations: ['insert', 'update'],
      fullDocument: 'updateLookup',
    };
    const task: TaskConfig = { ...base.tasks['app-starts']!, mongo };
    let client: MongoClient;
    let coll: Collection;
    const watchers: StreamWatcher[] = [];

    const watcher = (daemonId: string) => {
      const deps: WatcherDeps = {
        redis: ctx.daemon.redis,
        identity: { node: 'test-node', clusterId: ctx.daemon.identity.clusterId, daemonId },
        logger: createLogger({ level: 'debug', destination: new LogLines() }),
        submit: (r) => ctx.daemon.submit(r),
      };
      const w = new StreamWatcher(deps, task, new MongoSource({ ...mongo, url: MONGO_URL! }), {
        leaseMs: LEASE_MS,
        backoffMinMs: 200,
        backoffMaxMs: 1_000,
      });
      watchers.push(w);
      return w;
    };
    const state = () => readState(ctx.daemon.redis, 'app-starts');
    const runs = (): Promise<RunRecord[]> => ctx.daemon.store.list({ task: 'app-starts', limit: 1000 });
    // A listing leaves payloads out (their own keys): the runs read with theirs, newest first.
    const runsWithPayload = async (): Promise<RunRecord[]> =>
      (
        await ctx.daemon.store.getMany(
          (await runs()).map((r) => r.id),
          { withPayload: true },
        )
      ).filter((r) => r !== undefined);

    beforeAll(async () => {
      client = await new MongoClient(MONGO_URL!).connect();
      coll = client.db(dbName).collection('appStarts');
      await coll.insertOne({ seed: true }); // the collection exists before anyone watches it
    });

    afterAll(async () => {
      await Promise.all(watchers.map((w) => w.stop()));
      await client
        ?.db(dbName)
        .dropDatabase()
        .catch(() => undefined);
      await client?.close();
    });

    it('inserts and updates make runs with the change event as payload', async () => {
      const w = watcher('daemon-A');
      await w.start();
      // Watching, and the fresh stream's start position stored (so nothing after it is missed).
      await until('watching from a stored position', async () => {
        const s = await state();
        return s.state === 'watching' && (await ctx.daemon.redis.exists('runlet:stream:app-starts:token')) === 1;
      });

      const { insertedId } = await coll.insertOne({ platform: 'ios', at: new Date('2026-01-02T03:04:05Z') });
      await coll.updateOne({ _id: insertedId }, { $set: { platform: 'android' } });
      // Deleted only once both runs exist: updateLookup reads the document when the update is read.
      await until('2 runs', async () => (await runs()).length === 2);
      await coll.deleteOne({ _id: insertedId }); // not in operations: no run
      const [update, insert] = await runsWithPayload(); // newest first
      expect(insert!.trigger).toBe('mongo');
      expect(insert!.cause).toBe(`insert on ${dbName}.appStarts`);
      expect(insert!.dedupeKey).toMatch(/^app-starts:mongo:[0-9A-F]+$/i);
      expect(insert!.payload).toMatchObject({
        operationType: 'insert',
        ns: { db: dbName, coll: 'appStarts' },
        documentKey: { _id: { $oid: insertedId.toHexString() } },
        fullDocument: { _id: { $oid: insertedId.toHexString() }, platform: 'ios', at: { $date: '2026-01-02T03:04:05Z' } },
        clusterTime: expect.stringMatching(/^\d{4}-/),
      });
      expect(update!.payload).toMatchObject({
        operationType: 'update',
        updateDescription: { updatedFields: { platform: 'android' }, removedFields: [] },
        fullDocument: { platform: 'android' },
      });
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await runs()).toHaveLength(2);
    });

    it('a watcher killed while changes keep coming: the next resumes from the stored token, no change lost or run twice', async () => {
      const before = (await runs()).length;
      const [a] = watchers;
      const b = watcher('daemon-B');
      await b.start();

      const docs = Array.from({ length: 30 }, (_, i) => ({ n: i }));
      const writing = (async () => {
        for (const d of docs) {
          await coll.insertOne(d);
          await new Promise((r) => setTimeout(r, 30));
        }
      })();
      await until('some handled by A', async () => ((await state()).eventsTotal ?? 0) >= before + 5);
      await a!.halt(); // killed: its lease runs out by itself
      await writing;

      await until('all 30 runs', async () => (await runs()).length === before + 30, 30_000);
      expect((await state()).holder).toBe('daemon-B');
      const all = await runsWithPayload();
      expect(new Set(all.map((r) => r.dedupeKey)).size).toBe(all.length);
      const ns = all.flatMap((r) => {
        const n = (r.payload as { fullDocument?: { n?: number } }).fullDocument?.n;
        return n === undefined ? [] : [n];
      });
      expect(ns.sort((x, y) => x - y)).toEqual(docs.map((d) => d.n));
    });

    it('dropping the collection is reported as invalidated, not a crash loop', async () => {
      await coll.drop();
      await until('invalidated', async () => (await state()).errorKind === 'invalidated');
      const s = await state();
      expect(s.state).toBe('error');
      expect(s.error).toMatch(/invalidate/);
    });
  },
);

// What needs no server: the pipeline and the error mapping (always run).
describe('MongoSource without a server', () => {
  it("the pipeline keeps the task's operations and match, and never filters out invalidate", () => {
    const m: MongoTriggerConfig = {
      url: 'mongodb://x',
      db: 'd',
      collection: 'c',
      operations: ['insert', 'update'],
      match: { 'fullDocument.platform': 'ios' },
      fullDocument: 'default',
    };
    expect(pipelineOf(m)).toEqual([
      {
        $match: {
          $or: [
            { operationType: 'invalidate' },
            { $and: [{ operationType: { $in: ['insert', 'update'] } }, { 'fullDocument.platform': 'ios' }] },
          ],
        },
      },
    ]);
    expect(pipelineOf({ ...m, match: undefined })).toEqual([
      { $match: { $or: [{ operationType: 'invalidate' }, { operationType: { $in: ['insert', 'update'] } }] } },
    ]);
  });

  it('maps ChangeStreamHistoryLost (286) and ChangeStreamFatalError (280) to HistoryLost, 260 to Invalidated, the rest stays transient', () => {
    const server = (code: number, codeName: string) => new MongoServerError({ code, codeName, errmsg: `${codeName} happened` });
    expect(classify(server(286, 'ChangeStreamHistoryLost'))).toBeInstanceOf(HistoryLost);
    expect((classify(server(286, 'ChangeStreamHistoryLost')) as HistoryLost).reason).toBe(
      'ChangeStreamHistoryLost: ChangeStreamHistoryLost happened',
    );
    expect(classify(server(280, 'ChangeStreamFatalError'))).toBeInstanceOf(HistoryLost);
    expect(classify(server(260, 'ChangeStreamInvalidated'))).toBeInstanceOf(Invalidated);
    const net = new MongoNetworkError('connection reset');
    expect(classify(net)).toBe(net);
    const notPrimary = server(10107, 'NotWritablePrimary');
    expect(classify(notPrimary)).toBe(notPrimary);
  });
});
