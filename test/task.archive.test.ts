import { CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archive, type ArchiveResult } from '../tasks/archive-app-starts/archive.js';
import { DEFAULT_POLICY, hashValue, parsePolicy, redact, truncateIp } from '../tasks/archive-app-starts/pii.js';
import { dayPrefix, idOf, partKey, partNumber, type Manifest, type PartRef, type PartStore } from '../tasks/archive-app-starts/parts.js';
import { S3PartStore } from '../tasks/archive-app-starts/s3-store.js';
import type { DocumentSource, SourceDoc } from '../tasks/archive-app-starts/source.js';
import { TaskError } from '../tasks/lib/task.js';
import { manualRequest } from '../src/triggers/manual.js';
import { useDaemon } from './helpers/daemon.js';
import { startS3 } from './helpers/host.js';

// The archive task without MongoDB: its policy and part naming as pure code, and the whole
// loop in-process against an in-memory source and a real S3 server (s3rver), crashed at
// every point where a crash could lose or duplicate a document. The image itself runs once,
// through the daemon, to show what a missing MONGO_URL looks like.

const BUCKET = 'archive';
const SALT = 'test-salt-0123456789';
const BEFORE = new Date('2026-02-01T00:00:00Z');

/** An appStarts collection in memory: sorted like the Mongo scan, lazy, with deletes. */
class MemorySource implements DocumentSource {
  readonly docs = new Map<string, SourceDoc>();
  /** Documents handed out by scans so far: shows the scan is lazy. */
  pulled = 0;
  deletes = 0;
  /** Test faults: runs before each delete call with its ids; may delete some and throw. */
  beforeDelete?: (ids: readonly string[], call: number) => void;

  constructor(docs: SourceDoc[]) {
    for (const d of docs) this.add(d);
  }

  add(d: SourceDoc): void {
    this.docs.set(idOf(d.doc), d);
  }

  async *scan(before: Date): AsyncIterable<SourceDoc> {
    const order = [...this.docs.values()]
      .filter((d) => d.at < before)
      .sort((a, b) => a.at.getTime() - b.at.getTime() || (idOf(a.doc) < idOf(b.doc) ? -1 : 1));
    for (const d of order) {
      if (!this.docs.has(idOf(d.doc))) continue; // deleted while the scan ran
      this.pulled++;
      yield d;
    }
  }

  async deleteIds(ids: readonly string[]): Promise<number> {
    this.beforeDelete?.(ids, ++this.deletes);
    return this.deleteNow(ids);
  }

  deleteNow(ids: readonly string[]): number {
    let n = 0;
    for (const id of ids) if (this.docs.delete(id)) n++;
    return n;
  }
}

class Crash extends Error {}

/** The real S3 store with a crash switch at each step the archive takes. */
class CrashingStore implements PartStore {
  puts = 0;
  /** After this many finished puts, the next one crashes as `mode` says. */
  crashAfterPuts = Infinity;
  mode: 'mid-upload' | 'after-upload' = 'after-upload';

  constructor(readonly real: S3PartStore) {}

  abortStaleUploads(prefix: string) {
    return this.real.abortStaleUploads(prefix);
  }
  listParts(prefix: string) {
    return this.real.listParts(prefix);
  }
  get(key: string) {
    return this.real.get(key);
  }
  async put(key: string, body: Buffer, manifest: Manifest): Promise<void> {
    if (this.puts >= this.crashAfterPuts && this.mode === 'mid-upload') {
      // A process killed between pieces leaves an unfinished multipart upload, which is not an object.
      const { UploadId } = await this.real.client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      await this.real.client.send(
        new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: body.subarray(0, 100) }),
      );
      throw new Crash(`crashed uploading ${key}`);
    }
    await this.real.put(key, body, manifest);
    this.puts++;
    if (this.puts > this.crashAfterPuts) throw new Crash(`crashed after uploading ${key}, before verifying it`);
  }
}

let seq = 0;
function appStart(at: string | Date, extra: Record<string, unknown> = {}): SourceDoc {
  const n = ++seq;
  const date = new Date(at);
  return {
    at: date,
    doc: {
      _id: { $oid: n.toString(16).padStart(24, '0') },
      createdAt: { $date: date.toISOString() },
      userId: `user-${n}`,
      deviceId: `device-${n}`,
      email: `person${n}@example.com`,
      name: `Person Number${n}`,
      ip: `10.${n % 250}.${(n * 7) % 250}.${((n * 13) % 250) + 1}`, // never .0: the raw address never equals its /24
      platform: n % 2 ? 'ios' : 'android',
      startMs: 100 + (n % 900),
      ...extra,
    },
  };
}

/** `count` documents spread evenly over the UTC days from `firstDay`, one second apart within a day. */
function days(firstDay: string, dayCount: number, count: number): SourceDoc[] {
  const start = Date.parse(`${firstDay}T00:00:00Z`);
  return Array.from({ length: count }, (_, i) => appStart(new Date(start + (i % dayCount) * 86_400_000 + Math.floor(i / dayCount) * 1000)));
}

let s3: Awaited<ReturnType<typeof startS3>>;
let s3store: S3PartStore;
beforeAll(async () => {
  s3 = await startS3([BUCKET]);
  s3store = new S3PartStore({
    bucket: BUCKET,
    region: 'us-east-1',
    endpoint: s3.endpointForHost,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
});
afterAll(async () => {
  s3store?.client.destroy();
  await s3?.stop();
});

/** Every line of every part under the prefix, by day folder, read straight from S3. */
async function readBucket(prefix: string): Promise<{ keys: string[]; lines: Record<string, unknown>[]; text: string }> {
  const keys: string[] = [];
  for (const day of ['2026/01/01', '2026/01/02', '2026/01/03', '2026/01/04', '2026/01/05', '2026/01/31']) {
    keys.push(...(await s3store.listParts(`${prefix}/${day}/`)).map((p) => p.key));
  }
  let text = '';
  for (const key of keys) text += gunzipSync((await s3store.get(key)).body).toString('utf8');
  const lines = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { keys, lines, text };
}

let prefixSeq = 0;
const run = (source: DocumentSource, store: PartStore, prefix: string, batchSize = 500): Promise<ArchiveResult> =>
  archive({ source, store, policy: DEFAULT_POLICY, salt: SALT, prefix, before: BEFORE, batchSize });

describe('PII policy', () => {
  const doc = {
    _id: { $oid: 'a'.repeat(24) },
    email: 'ada@example.com',
    name: 'Ada Lovelace',
    userId: 'u-123',
    deviceId: 'd-456',
    device: { id: 'dev-789', model: 'Pixel 8' },
    ip: '203.0.113.77',
    sessions: [{ ip: '2001:db8:abcd:12:1:2:3:4' }, { ip: 'not-an-ip' }],
    platform: 'android',
  };

  it('the default policy drops, hashes and truncates, and leaves other fields and the input alone', () => {
    const out = redact(doc, DEFAULT_POLICY, SALT);
    expect(out).toEqual({
      _id: doc._id,
      userId: hashValue('u-123', SALT),
      deviceId: hashValue('d-456', SALT),
      device: { id: hashValue('dev-789', SALT), model: 'Pixel 8' },
      ip: '203.0.113.0',
      sessions: doc.sessions,
      platform: 'android',
    });
    expect(doc.email).toBe('ada@example.com');
    expect(hashValue('u-123', SALT)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('hashes are stable with the same salt and differ with another', () => {
    const a = redact(doc, DEFAULT_POLICY, SALT);
    const b = redact(doc, DEFAULT_POLICY, SALT);
    const c = redact(doc, DEFAULT_POLICY, 'another-salt');
    expect(a.userId).toBe(b.userId);
    expect(a.userId).not.toBe(c.userId);
    expect(a.device.id).not.toBe(c.device.id);
  });

  it('nested paths reach through objects and arrays; an IP field that is not an IP is dropped', () => {
    const policy = parsePolicy(JSON.stringify({ drop: ['device.model'], hash: ['device.id'], truncateIp: ['ip', 'sessions.ip'] }));
    const out = redact(doc, policy, SALT);
    expect(out.device).toEqual({ id: hashValue('dev-789', SALT) });
    expect(out.sessions).toEqual([{ ip: '2001:db8:abcd::' }, {}]);
    expect(out.email).toBe('ada@example.com'); // not in this policy: the policy is exactly what PII_POLICY says
  });

  it('IPv4 to /24, IPv6 to /48 in every spelling, IPv4-mapped as IPv4', () => {
    expect(truncateIp('192.168.1.254')).toBe('192.168.1.0');
    expect(truncateIp('2001:db8:abcd:12::1')).toBe('2001:db8:abcd::');
    expect(truncateIp('2001:0db8:0000:0012:0000:0000:0000:0001')).toBe('2001:db8:0::');
    expect(truncateIp('::1')).toBe('0:0:0::');
    expect(truncateIp('fe80::1%eth0')).toBe('fe80:0:0::');
    expect(truncateIp('::ffff:198.51.100.9')).toBe('::ffff:198.51.100.0');
    expect(truncateIp('999.1.1.1')).toBeUndefined();
    expect(truncateIp(42)).toBeUndefined();
  });

  it('PII_POLICY mistakes are one clear TaskError, never a weaker policy', () => {
    expect(parsePolicy(undefined)).toBe(DEFAULT_POLICY);
    expect(parsePolicy('')).toBe(DEFAULT_POLICY);
    expect(() => parsePolicy('{drop:')).toThrow(TaskError);
    expect(() => parsePolicy('{"drop":["email"],"hsah":["userId"]}')).toThrow(/unknown key\(s\) hsah/);
    expect(() => parsePolicy('{"drop":"email"}')).toThrow(/PII_POLICY.drop must be a list/);
    expect(() => parsePolicy('{"hash":["device..id"]}')).toThrow(/PII_POLICY.hash must be a list/);
    expect(() => parsePolicy('{"drop":["_id"]}')).toThrow(/names _id/);
  });
});

describe('part naming', () => {
  it('one folder per UTC day, four-digit numbers that may grow past 9999', () => {
    expect(dayPrefix('appStarts', '2026-01-02')).toBe('appStarts/2026/01/02/');
    expect(partKey('appStarts', '2026-01-02', 7)).toBe('appStarts/2026/01/02/part-0007.jsonl.gz');
    expect(partKey('appStarts', '2026-12-31', 12345)).toBe('appStarts/2026/12/31/part-12345.jsonl.gz');
    expect(partNumber('appStarts/2026/01/02/part-0007.jsonl.gz')).toBe(7);
    expect(partNumber('appStarts/2026/01/02/notes.txt')).toBeUndefined();
  });
});

describe('archive against s3rver', () => {
  it('2,500 documents in batches of 1000 make 3 parts, read lazily, with no raw personal data in any of them', async () => {
    const prefix = `batching${++prefixSeq}`;
    const docs = days('2026-01-03', 1, 2500);
    const source = new MemorySource(docs);
    const store = new CrashingStore(s3store);
    const pulledAtPut: number[] = [];
    const put = store.put.bind(store);
    store.put = async (key, body, manifest) => {
      pulledAtPut.push(source.pulled);
      return put(key, body, manifest);
    };

    const result = await run(source, store, prefix, 1000);
    expect(result).toEqual({
      archived: 2500,
      deleted: 2500,
      skippedAlreadyArchived: 0,
      parts: [1, 2, 3].map((n) => partKey(prefix, '2026-01-03', n)),
    });
    // Memory follows the batch, not the collection: each part is written with at most one batch read ahead.
    expect(pulledAtPut).toEqual([1000, 2000, 2500]);
    const refs: PartRef[] = await s3store.listParts(`${prefix}/2026/01/03/`);
    expect(refs.map((r) => r.manifest.count)).toEqual([1000, 1000, 500]);
    expect(refs[0]!.manifest.firstId).toBe(idOf(docs[0]!.doc));
    expect(source.docs.size).toBe(0);

    const { text, lines } = await readBucket(prefix);
    expect(lines).toHaveLength(2500);
    for (const d of [docs[0]!, docs[1234]!, docs[2499]!]) {
      for (const field of ['userId', 'deviceId', 'email', 'name', 'ip'] as const) {
        const raw = `"${d.doc[field] as string}"`;
        expect(text.includes(raw), `raw ${field} ${raw} in the archive`).toBe(false);
      }
    }
    expect(text).not.toContain('@example.com');
    expect(lines[0]).toMatchObject({
      _id: docs[0]!.doc._id,
      userId: hashValue(docs[0]!.doc.userId, SALT),
      platform: docs[0]!.doc.platform,
    });
    expect(lines[0]!.ip).toMatch(/^10\.\d+\.\d+\.0$/);
  });

  it('parts follow the UTC day of createdAt, and documents not yet old enough stay', async () => {
    const prefix = `days${++prefixSeq}`;
    const young = appStart('2026-02-03T10:00:00Z');
    const source = new MemorySource([
      appStart('2026-01-31T23:59:59.999Z'),
      appStart('2026-01-01T00:00:00Z'),
      appStart('2026-01-01T23:00:00Z'),
      young,
    ]);
    const result = await run(source, new CrashingStore(s3store), prefix);
    expect(result.parts).toEqual([partKey(prefix, '2026-01-01', 1), partKey(prefix, '2026-01-31', 1)]);
    expect([...source.docs.values()]).toEqual([young]);
    // A later run for a day that already has parts continues its numbering.
    source.add(appStart('2026-01-01T12:00:00Z'));
    expect((await run(source, new CrashingStore(s3store), prefix)).parts).toEqual([partKey(prefix, '2026-01-01', 2)]);
  });

  // Each scenario crashes one run at a point of interest, then runs again to the end. The
  // bucket must then hold every old document exactly once, and the source must have lost
  // exactly those (the young ones stay).
  const scenarios: { name: string; crash: (store: CrashingStore, source: MemorySource) => void }[] = [
    { name: 'mid-upload, after 2 parts', crash: (st) => Object.assign(st, { crashAfterPuts: 2, mode: 'mid-upload' }) },
    { name: 'after upload, before verify', crash: (st) => Object.assign(st, { crashAfterPuts: 3, mode: 'after-upload' }) },
    {
      name: 'after verify, before delete',
      crash: (_st, src) =>
        (src.beforeDelete = (_ids, call) => {
          if (call === 2) throw new Crash('crashed before deleting');
        }),
    },
    {
      name: 'mid-delete',
      crash: (_st, src) =>
        (src.beforeDelete = (ids, call) => {
          if (call !== 3) return;
          src.deleteNow(ids.slice(0, Math.floor(ids.length / 2)));
          throw new Crash('crashed halfway through a delete');
        }),
    },
  ];

  for (const s of scenarios) {
    it(`crash ${s.name}: the re-run archives the rest, nothing lost, nothing duplicated`, async () => {
      const prefix = `crash${++prefixSeq}`;
      const old = days('2026-01-01', 3, 2300);
      const young = [appStart('2026-02-01T00:00:00Z'), appStart('2026-02-02T00:00:00Z')];
      const source = new MemorySource([...old, ...young]);
      const crashing = new CrashingStore(s3store);
      s.crash(crashing, source);
      await expect(run(source, crashing, prefix)).rejects.toThrow(Crash);
      expect(source.docs.size).toBeGreaterThan(young.length);

      source.beforeDelete = undefined;
      const second = await run(source, new CrashingStore(s3store), prefix);
      await expectArchivedExactlyOnce(prefix, old, source, young);
      expect(second.deleted).toBe(second.archived + second.skippedAlreadyArchived);
      if (s.name !== 'mid-upload, after 2 parts') expect(second.skippedAlreadyArchived).toBeGreaterThan(0);
      // New parts continue the numbering after what the crashed run left.
      const numbers = (await readBucket(prefix)).keys.filter((k) => k.includes('/2026/01/01/')).map((k) => partNumber(k));
      expect(numbers).toEqual(numbers.map((_, i) => i + 1));
    });
  }

  it('three crashes in a row, and a late document inside an archived range: still each document exactly once', async () => {
    const prefix = `multi${++prefixSeq}`;
    const old = days('2026-01-01', 2, 1800);
    const source = new MemorySource(old);

    const a = new CrashingStore(s3store);
    a.crashAfterPuts = 0; // part-0001 of day 1 stored, not verified, nothing deleted
    await expect(run(source, a, prefix)).rejects.toThrow(Crash);
    expect(source.docs.size).toBe(1800);

    // Arrives after the crash with a createdAt inside part-0001's range: the part's range
    // says "maybe", its ids say "no", so it must be written, not deleted unarchived.
    const late = appStart(new Date(Date.parse('2026-01-01T00:00:00Z') + 10_500));
    source.add(late);

    const b = new CrashingStore(s3store);
    b.crashAfterPuts = 1;
    b.mode = 'mid-upload';
    await expect(run(source, b, prefix)).rejects.toThrow(Crash);

    source.deletes = 0;
    source.beforeDelete = (ids, call) => {
      if (call !== 2) return;
      source.deleteNow(ids.slice(0, 10));
      throw new Crash('crashed mid-delete');
    };
    await expect(run(source, new CrashingStore(s3store), prefix)).rejects.toThrow(Crash);
    source.beforeDelete = undefined;

    const last = await run(source, new CrashingStore(s3store), prefix);
    expect(last.deleted).toBe(last.archived + last.skippedAlreadyArchived);
    await expectArchivedExactlyOnce(prefix, [...old, late], source, []);
  });
});

async function expectArchivedExactlyOnce(prefix: string, old: SourceDoc[], source: MemorySource, young: SourceDoc[]): Promise<void> {
  const { lines } = await readBucket(prefix);
  const seen = new Map<string, number>();
  for (const l of lines) seen.set(idOf(l), (seen.get(idOf(l)) ?? 0) + 1);
  const duplicated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  const missing = old.map((d) => idOf(d.doc)).filter((id) => !seen.has(id));
  expect({ duplicated, missing, stray: seen.size - old.length }).toEqual({ duplicated: [], missing: [], stray: 0 });
  expect([...source.docs.keys()].sort()).toEqual(young.map((d) => idOf(d.doc)).sort());
}

describe('the archive-app-starts image through runlet', () => {
  const ctx = useDaemon(`
tasks:
  archive-app-starts: { image: runlet/task-archive-app-starts:local, memory: 256m, timeout: 30s }
`);

  it('without MONGO_URL it fails with exit code 2 and one clear line', async () => {
    const { runId } = await ctx.daemon.submit(manualRequest('archive-app-starts', undefined));
    const r = await ctx.daemon.waitForEnd(runId);
    expect(r.status, `${r.reason ?? ''} ${r.logTail ?? ''}`).toBe('failed');
    expect(r.exitCode).toBe(2);
    expect(r.logTail?.trim()).toBe(
      "MONGO_URL is not set: archive-app-starts has nothing to read from; set it in the task's env (see README)",
    );
  });
});
