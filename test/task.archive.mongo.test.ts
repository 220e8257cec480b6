import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { MongoClient, ObjectId, type Collection, type Db } from 'mongodb';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archive } from '../tasks/archive-app-starts/archive.js';
import { MongoSource } from '../tasks/archive-app-starts/mongo-source.js';
import { DEFAULT_POLICY } from '../tasks/archive-app-starts/pii.js';
import { idOf, type Manifest, type PartStore } from '../tasks/archive-app-starts/parts.js';
import { S3PartStore } from '../tasks/archive-app-starts/s3-store.js';
import { manualRequest } from '../src/triggers/manual.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startS3 } from './helpers/host.js';
import { startTestRedis } from './helpers/redis.js';

// archive-app-starts against a real MongoDB (standalone or replica set) and s3rver: the
// keyset scan and deletes in-process, then the image through runlet, killed midway by a
// short timeout and run again. The container must reach MongoDB itself, so a loopback
// MONGO_URL won't do there: set MONGO_URL_FOR_CONTAINERS to the host's bridge address with
// directConnection=true (a replica set advertises members by the names in its config,
// which a container may not resolve), and start mongod with --bind_ip_all. Without
// MONGO_URL this file is skipped, in one line.
const MONGO_URL = process.env.MONGO_URL;
const MONGO_URL_FOR_CONTAINERS = process.env.MONGO_URL_FOR_CONTAINERS || MONGO_URL;
if (!MONGO_URL) {
  console.warn(
    '\n*** MongoDB tests SKIPPED (task.archive.mongo): MONGO_URL is not set. Run: mongod --replSet rs0 --port 27017 --bind_ip_all --dbpath /tmp/rs0 & mongosh --eval "rs.initiate()"; MONGO_URL=mongodb://127.0.0.1:27017/?replicaSet=rs0 MONGO_URL_FOR_CONTAINERS=mongodb://172.17.0.1:27017/?directConnection=true npx vitest run test/task.archive.mongo ***\n',
  );
}

const BUCKET = 'archive';
const SALT = 'mongo-test-salt';
const DAY_MS = 86_400_000;

describe.skipIf(!MONGO_URL)('archive-app-starts against a real MongoDB', () => {
  const dbName = `runlet_archive_${process.pid}_${Date.now().toString(36)}`;
  let client: MongoClient;
  let db: Db;
  let s3: Awaited<ReturnType<typeof startS3>>;
  let store: S3PartStore;
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let daemon: TestDaemon;

  beforeAll(async () => {
    client = await new MongoClient(MONGO_URL!).connect();
    db = client.db(dbName);
    s3 = await startS3([BUCKET]);
    store = new S3PartStore({
      bucket: BUCKET,
      region: 'us-east-1',
      endpoint: s3.endpointForHost,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const task = (name: string, collection: string, timeout: string) => `
  ${name}:
    image: runlet/task-archive-app-starts:local
    memory: 256m
    timeout: ${timeout}
    killGrace: 0s
    env:
      MONGO_URL: "${MONGO_URL_FOR_CONTAINERS}"
      MONGO_DB: "${dbName}"
      MONGO_COLLECTION: "${collection}"
      ARCHIVE_SALT: "${SALT}"
      ARCHIVE_BATCH_SIZE: "200"
      S3_ENDPOINT: "${s3.endpointForContainers}"
      S3_BUCKET: "${BUCKET}"
      AWS_ACCESS_KEY_ID: S3RVER
      AWS_SECRET_ACCESS_KEY: S3RVER`;
    redis = await startTestRedis();
    daemon = await startTestDaemon({
      config: configFrom(`tasks:${task('archive', 'viaImage', '60s')}${task('archive-short', 'viaImage', '1s')}`),
      redisUrl: redis.url,
    });
  });

  afterAll(async () => {
    await daemon?.stop();
    if (daemon) await removeClusterContainers(daemon.identity.clusterId);
    await redis?.stopAndClean();
    store?.client.destroy();
    await s3?.stop();
    await db?.dropDatabase().catch(() => undefined);
    await client?.close();
  });

  /** `old` documents 40–42 days back (three UTC days) and `young` from today, with personal data. */
  async function seed(coll: Collection, old: number, young: number): Promise<ObjectId[]> {
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const docs = Array.from({ length: old + young }, (_, i) => ({
      _id: new ObjectId(),
      createdAt: i < old ? new Date(today - (40 + (i % 3)) * DAY_MS + i) : new Date(today + (i % 1000)),
      userId: `user-${i}`,
      email: `p${i}@example.com`,
      ip: '192.0.2.55',
      platform: i % 2 ? 'ios' : 'android',
      startMs: i % 700,
    }));
    await coll.insertMany(docs);
    await coll.createIndex({ createdAt: 1, _id: 1 });
    return docs.slice(0, old).map((d) => d._id);
  }

  /** Every archived line under the prefix, counted by _id. */
  async function archivedIds(prefix: string): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    let token: string | undefined;
    do {
      const page = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/`, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const text = gunzipSync((await store.get(o.Key!)).body).toString('utf8');
        expect(text).not.toContain('@example.com');
        expect(text).not.toContain('192.0.2.55');
        for (const line of text.split('\n').filter(Boolean)) {
          const id = idOf(JSON.parse(line) as Record<string, unknown>);
          counts.set(id, (counts.get(id) ?? 0) + 1);
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return counts;
  }

  async function expectExactlyOnce(prefix: string, coll: Collection, old: ObjectId[], young: number): Promise<void> {
    const counts = await archivedIds(prefix);
    const want = old.map((id) => JSON.stringify({ $oid: id.toHexString() }));
    expect({
      missing: want.filter((id) => !counts.has(id)).length,
      duplicated: [...counts.values()].filter((n) => n > 1).length,
      stray: counts.size - want.length,
    }).toEqual({ missing: 0, duplicated: 0, stray: 0 });
    expect(await coll.countDocuments({ _id: { $in: old } })).toBe(0);
    expect(await coll.countDocuments()).toBe(young);
  }

  it('in-process: the keyset scan over real documents, crashed after an upload and then mid-delete, still archives each once', async () => {
    const coll = db.collection('inProcess');
    const old = await seed(coll, 1500, 20);
    const before = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - 30 * DAY_MS);
    const source = new MongoSource(coll, 200);
    let puts = 0;
    const crashAfterThirdPut: PartStore = {
      abortStaleUploads: (p) => store.abortStaleUploads(p),
      listParts: (p) => store.listParts(p),
      get: (k) => store.get(k),
      put: async (k: string, b: Buffer, m: Manifest) => {
        await store.put(k, b, m);
        if (++puts === 3) throw new Error('crash after upload');
      },
    };
    const opts = { policy: DEFAULT_POLICY, salt: SALT, prefix: 'inProcess', before, batchSize: 200 };
    await expect(archive({ ...opts, source, store: crashAfterThirdPut })).rejects.toThrow('crash after upload');

    let deletes = 0;
    const midDelete = {
      scan: (b: Date) => source.scan(b),
      deleteIds: async (ids: readonly string[]) => {
        if (++deletes !== 2) return source.deleteIds(ids);
        await source.deleteIds(ids.slice(0, 50));
        throw new Error('crash mid-delete');
      },
    };
    await expect(archive({ ...opts, source: midDelete, store })).rejects.toThrow('crash mid-delete');

    const last = await archive({ ...opts, source, store });
    expect(last.skippedAlreadyArchived).toBeGreaterThan(0);
    await expectExactlyOnce('inProcess', coll, old, 20);
  });

  it('the image through runlet: killed midway by a 1s timeout, then run again: nothing lost, nothing duplicated', async () => {
    const coll = db.collection('viaImage');
    const old = await seed(coll, 20_000, 50);

    const short = await daemon.waitForEnd((await daemon.submit(manualRequest('archive-short', undefined))).runId);
    // Usually timed_out partway; a fast machine may finish. Either way the invariant below holds.
    expect(['timed_out', 'succeeded']).toContain(short.status);
    const leftAfterKill = await coll.countDocuments({ _id: { $in: old } });

    const full = await daemon.waitForEnd((await daemon.submit(manualRequest('archive', undefined))).runId, 120_000);
    expect(full.status, full.logTail).toBe('succeeded');
    const out = JSON.parse(full.output!) as { archived: number; deleted: number; parts: string[]; skippedAlreadyArchived: number };
    expect(out.deleted).toBe(leftAfterKill);
    expect(out.archived + out.skippedAlreadyArchived).toBe(leftAfterKill);
    await expectExactlyOnce('viaImage', coll, old, 50);
  }, 150_000);
});
