import { redact, type PiiPolicy } from './pii.js';
import { dayOf, dayPrefix, encodePart, idOf, idsInPart, partKey, PartMismatch, type PartRef, type PartStore } from './parts.js';
import type { DocumentSource, SourceDoc } from './source.js';

/**
 * The archive loop: scan old documents in (createdAt, _id) order, redact them, write each
 * batch of one day as a new part, read the part back, and only then delete its documents.
 * Why a crash at any point loses and duplicates nothing: README.md, and the comments at
 * the two deletes below.
 */

export interface ArchiveOptions {
  readonly source: DocumentSource;
  readonly store: PartStore;
  readonly policy: PiiPolicy;
  readonly salt: string;
  /** Key prefix without a trailing slash, e.g. `appStarts`. */
  readonly prefix: string;
  /** Documents with createdAt before this are archived. */
  readonly before: Date;
  /** Documents per part, and per delete of already-archived documents. */
  readonly batchSize: number;
  readonly log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface ArchiveResult {
  /** Documents written to new parts by this run. */
  archived: number;
  /** Documents this run deleted from the source (new parts and already archived ones). */
  deleted: number;
  /** Keys of the parts this run wrote. */
  parts: string[];
  /** Documents found in a part an earlier run wrote (and verified now): deleted, not written again. */
  skippedAlreadyArchived: number;
}

interface Pending {
  readonly atMs: number;
  readonly doc: Record<string, unknown>;
}

/**
 * What one day already holds: its parts, the next free number, and the ids of the parts
 * that could contain the documents still to come (read and checked on first need).
 */
class Day {
  private readonly ids = new Map<string, Promise<Set<string>>>();
  next: number;

  constructor(
    readonly day: string,
    private parts: PartRef[],
    private readonly store: PartStore,
  ) {
    this.next = parts.reduce((max, p) => Math.max(max, p.number), 0) + 1;
  }

  /** Whether an existing part holds this document; the part is verified before it counts. */
  async holds(atMs: number, id: string): Promise<boolean> {
    // The scan only moves forward in time: a part that ends before this document can't hold a later one.
    this.parts = this.parts.filter((p) => {
      const keep = p.manifest.lastAtMs >= atMs;
      if (!keep) this.ids.delete(p.key);
      return keep;
    });
    for (const p of this.parts) {
      if (p.manifest.firstAtMs > atMs) continue;
      if ((await this.idsOf(p)).has(id)) return true;
    }
    return false;
  }

  private idsOf(p: PartRef): Promise<Set<string>> {
    let ids = this.ids.get(p.key);
    if (!ids) {
      ids = this.store.get(p.key).then(({ body, manifest }) => new Set(idsInPart(p.key, body, manifest)));
      this.ids.set(p.key, ids);
    }
    return ids;
  }
}

export async function archive(opts: ArchiveOptions): Promise<ArchiveResult> {
  const { source, store, policy, salt, prefix, batchSize } = opts;
  const log = opts.log ?? (() => undefined);
  const result: ArchiveResult = { archived: 0, deleted: 0, parts: [], skippedAlreadyArchived: 0 };

  const aborted = await store.abortStaleUploads(`${prefix}/`);
  if (aborted > 0) log('aborted unfinished multipart uploads', { aborted });

  let day: Day | undefined;
  let batch: Pending[] = [];
  let alreadyArchived: string[] = [];

  const writePart = async (d: Day): Promise<void> => {
    if (batch.length === 0) return;
    const docs = batch;
    batch = [];
    const key = partKey(prefix, d.day, d.next++);
    const { body, manifest } = encodePart(docs);
    await store.put(key, body, manifest);
    const stored = await store.get(key);
    const readBack = idsInPart(key, stored.body, stored.manifest);
    const expected = docs.map((p) => idOf(p.doc));
    if (JSON.stringify(stored.manifest) !== JSON.stringify(manifest) || readBack.some((id, i) => id !== expected[i])) {
      throw new PartMismatch(`${key}: read back, it is not the part that was written (${readBack.length} of ${expected.length} documents)`);
    }
    result.parts.push(key);
    result.archived += docs.length;
    log('part written and verified', { key, count: manifest.count, bytes: body.length, sha256: manifest.sha256 });
    // No loss: these ids were just read back from the stored object, whose bytes match the
    // sha256 and line count we computed, so every document deleted here is in S3. No
    // duplicate: a crash before or during this delete leaves some of them in the source;
    // the next run finds this part in the day's listing, reads these same ids from it and
    // deletes those documents instead of writing them again (Day.holds).
    result.deleted += await source.deleteIds(readBack);
  };

  const deleteAlreadyArchived = async (): Promise<void> => {
    if (alreadyArchived.length === 0) return;
    const ids = alreadyArchived;
    alreadyArchived = [];
    // No loss: each id was read from an existing part whose bytes matched its manifest
    // (sha256, count) before Day.holds said yes. Deleting one twice is harmless.
    result.deleted += await source.deleteIds(ids);
  };

  const openDay = async (name: string): Promise<Day> => {
    const parts = await store.listParts(dayPrefix(prefix, name));
    if (parts.length > 0) log('day already has parts', { day: name, parts: parts.length });
    return new Day(name, parts, store);
  };

  for await (const d of opts.source.scan(opts.before) as AsyncIterable<SourceDoc>) {
    const name = dayOf(d.at);
    if (day?.day !== name) {
      if (day) await writePart(day);
      await deleteAlreadyArchived();
      day = await openDay(name);
    }
    const doc = redact(d.doc, policy, salt);
    const atMs = d.at.getTime();
    if (await day.holds(atMs, idOf(doc))) {
      result.skippedAlreadyArchived++;
      alreadyArchived.push(idOf(doc));
      if (alreadyArchived.length >= batchSize) await deleteAlreadyArchived();
      continue;
    }
    batch.push({ atMs, doc });
    if (batch.length >= batchSize) await writePart(day);
  }
  if (day) await writePart(day);
  await deleteAlreadyArchived();
  return result;
}
