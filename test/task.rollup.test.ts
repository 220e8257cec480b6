import { MongoClient, type Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { methodFor, rollupPipeline, UNKNOWN, window } from '../tasks/rollup-analytics/pipeline.js';
import { rollup } from '../tasks/rollup-analytics/rollup.js';
import { manualRequest } from '../src/triggers/manual.js';
import { useDaemon } from './helpers/daemon.js';

// The hourly rollup: its pipeline as data (always), the aggregation against a real MongoDB
// when MONGO_URL is set (skipped loudly otherwise), and the image without MONGO_URL.

const MONGO_URL = process.env.MONGO_URL;
if (!MONGO_URL) {
  console.warn(
    '\n*** MongoDB tests SKIPPED (task.rollup: real aggregation and re-run): MONGO_URL is not set. Run: mongod --replSet rs0 --port 27017 --dbpath /tmp/rs0 & mongosh --eval "rs.initiate()"; MONGO_URL=mongodb://127.0.0.1:27017/?replicaSet=rs0 npx vitest run test/task.rollup ***\n',
  );
}

const from = new Date('2026-03-01T10:00:00Z');
const to = new Date('2026-03-01T12:00:00Z');
const computedAt = new Date('2026-03-01T12:05:00Z');

describe('rollup pipeline (no server)', () => {
  it('approximate: one $group with $percentile, then $merge on (hour, platform, appVersion) replacing', () => {
    const p = rollupPipeline({ from, to, into: 'appStartsHourly', method: 'approximate', computedAt });
    expect(p[0]).toEqual({ $match: { createdAt: { $gte: from, $lt: to } } });
    expect(p[1]!.$group._id.platform).toEqual({ $ifNull: ['$platform', UNKNOWN] });
    expect(p[1]!.$group.p).toEqual({ $percentile: { input: '$startMs', p: [0.5, 0.95], method: 'approximate' } });
    expect(p[1]!.$group.count).toEqual({ $sum: 1 });
    expect(p.at(-1)).toEqual({
      $merge: { into: 'appStartsHourly', on: ['hour', 'platform', 'appVersion'], whenMatched: 'replace', whenNotMatched: 'insert' },
    });
    expect(p.at(-2)!.$project).toMatchObject({
      _id: 0,
      hour: '$_id.hour',
      count: 1,
      percentileMethod: { $literal: 'approximate' },
      computedAt: { $literal: computedAt },
    });
    expect(JSON.stringify(p)).not.toContain('$dateTrunc'); // 5.0+ only
  });

  it('sorted (servers before 7.0): sorts, pushes, filters to numbers and picks the nearest rank', () => {
    const p = rollupPipeline({ from, to, into: 'h', method: 'sorted', computedAt, valueField: 'coldStartMs' });
    expect(p.map((s) => Object.keys(s)[0])).toEqual(['$match', '$sort', '$group', '$set', '$set', '$set', '$project', '$merge']);
    expect(p[1]).toEqual({ $sort: { coldStartMs: 1 } });
    expect(p[2]!.$group.values).toEqual({ $push: '$coldStartMs' });
    expect(JSON.stringify(p)).not.toContain('$percentile');
  });

  it('the window is the last N complete hours; $percentile from 7.0', () => {
    expect(window(Date.parse('2026-03-01T12:34:56Z'), 2)).toEqual({ from, to });
    expect(window(Date.parse('2026-03-01T12:00:00Z'), 1)).toEqual({ from: new Date('2026-03-01T11:00:00Z'), to });
    expect(methodFor('7.0.2')).toBe('approximate');
    expect(methodFor('8.0.0')).toBe('approximate');
    expect(methodFor('6.0.14')).toBe('sorted');
  });
});

describe.skipIf(!MONGO_URL)('rollup against a real MongoDB', () => {
  const dbName = `runlet_rollup_${process.pid}_${Date.now().toString(36)}`;
  let client: MongoClient;
  let db: Db;

  beforeAll(async () => {
    client = await new MongoClient(MONGO_URL!).connect();
    db = client.db(dbName);
    const docs = [];
    // Hour 10: ios 1.0 with startMs 1..100; android without appVersion; hour 11: ios 1.0, 3 starts, one without startMs.
    for (let i = 1; i <= 100; i++)
      docs.push({ createdAt: new Date(Date.parse('2026-03-01T10:00:00Z') + i * 1000), platform: 'ios', appVersion: '1.0', startMs: i });
    docs.push({ createdAt: new Date('2026-03-01T10:30:00Z'), platform: 'android', startMs: 500 });
    docs.push({ createdAt: new Date('2026-03-01T11:00:00Z'), platform: 'ios', appVersion: '1.0', startMs: 10 });
    docs.push({ createdAt: new Date('2026-03-01T11:59:59Z'), platform: 'ios', appVersion: '1.0', startMs: 30 });
    docs.push({ createdAt: new Date('2026-03-01T11:30:00Z'), platform: 'ios', appVersion: '1.0' });
    docs.push({ createdAt: new Date('2026-03-01T12:00:00Z'), platform: 'ios', appVersion: '1.0', startMs: 1 }); // outside the window
    await db.collection('appStarts').insertMany(docs);
  });
  afterAll(async () => {
    await db?.dropDatabase().catch(() => undefined);
    await client?.close();
  });

  const rows = () =>
    db
      .collection('appStartsHourly')
      .find({}, { projection: { _id: 0, computedAt: 0 } })
      .sort({ hour: 1, platform: 1 })
      .toArray();

  for (const method of ['sorted', 'approximate'] as const) {
    it(`${method}: counts and percentiles per hour, platform and version; a re-run replaces the same rows`, async (t) => {
      const { version } = await db.admin().buildInfo();
      if (method === 'approximate' && methodFor(String(version)) !== 'approximate') t.skip();
      await db.collection('appStartsHourly').deleteMany({});
      const first = await rollup(db, { source: 'appStarts', into: 'appStartsHourly', from, to, method });
      expect(first.groups).toBe(3);
      const r = await rows();
      expect(r.map((x) => [x.hour.toISOString(), x.platform, x.appVersion, x.count, x.startMs.n])).toEqual([
        ['2026-03-01T10:00:00.000Z', 'android', UNKNOWN, 1, 1],
        ['2026-03-01T10:00:00.000Z', 'ios', '1.0', 100, 100],
        ['2026-03-01T11:00:00.000Z', 'ios', '1.0', 3, 2],
      ]);
      if (method === 'sorted') expect(r[1]!.startMs).toEqual({ n: 100, p50: 50, p95: 95 });
      else {
        expect(r[1]!.startMs.p50).toBeGreaterThanOrEqual(49);
        expect(r[1]!.startMs.p50).toBeLessThanOrEqual(51);
        expect(r[1]!.startMs.p95).toBeGreaterThanOrEqual(94);
        expect(r[1]!.startMs.p95).toBeLessThanOrEqual(96);
      }

      await db
        .collection('appStarts')
        .insertOne({ createdAt: new Date('2026-03-01T11:10:00Z'), platform: 'ios', appVersion: '1.0', startMs: 20 });
      const again = await rollup(db, { source: 'appStarts', into: 'appStartsHourly', from, to, method });
      expect(again.groups).toBe(3);
      expect(await db.collection('appStartsHourly').countDocuments()).toBe(3);
      expect((await rows())[2]).toMatchObject({ count: 4, startMs: { n: 3 } });
      await db.collection('appStarts').deleteOne({ createdAt: new Date('2026-03-01T11:10:00Z') });
    });
  }
});

describe('the rollup-analytics image through runlet', () => {
  const ctx = useDaemon(`
tasks:
  rollup-analytics: { image: runlet/task-rollup-analytics:local, memory: 128m, timeout: 30s }
`);

  it('without MONGO_URL it fails with exit code 2 and one clear line', async () => {
    const { runId } = await ctx.daemon.submit(manualRequest('rollup-analytics', undefined));
    const r = await ctx.daemon.waitForEnd(runId);
    expect(r.status, `${r.reason ?? ''} ${r.logTail ?? ''}`).toBe('failed');
    expect(r.exitCode).toBe(2);
    expect(r.logTail?.trim()).toBe(
      "MONGO_URL is not set: rollup-analytics has nothing to read from; set it in the task's env (see README)",
    );
  });
});
