import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';

/**
 * How parts are named, what each records about itself, and how one is checked. A part is
 * `<prefix>/YYYY/MM/DD/part-NNNN.jsonl.gz`: the documents of one UTC day (by createdAt),
 * one JSON object per line, gzipped. Numbers start at 1 per day and only grow.
 */

/** Stored as the object's user metadata (x-amz-meta-*), written in the same request as the bytes. */
export interface Manifest {
  /** Documents (lines) in the part. */
  readonly count: number;
  /** sha256 of the gzipped bytes as stored, hex. */
  readonly sha256: string;
  /** createdAt of the first and last document (epoch ms): which parts can hold a given document. */
  readonly firstAtMs: number;
  readonly lastAtMs: number;
  /** _id of the first and last document (relaxed Extended JSON), for people reading the bucket. */
  readonly firstId: string;
  readonly lastId: string;
}

export interface PartRef {
  readonly key: string;
  readonly number: number;
  readonly manifest: Manifest;
}

/** Where the archive keeps parts, and nothing else: S3 in production (s3-store.ts). */
export interface PartStore {
  /** Aborts unfinished multipart uploads under the prefix; returns how many (0 when the store can't list them). */
  abortStaleUploads(prefix: string): Promise<number>;
  /** The day's finished parts with their manifests, in number order. */
  listParts(dayPrefix: string): Promise<PartRef[]>;
  /** Stores a whole part: after this resolves the object exists complete, or not at all. */
  put(key: string, body: Buffer, manifest: Manifest): Promise<void>;
  /** The part's bytes and manifest as stored (not as they were sent). */
  get(key: string): Promise<{ body: Buffer; manifest: Manifest }>;
}

export const FORMAT = 'jsonl.gz/1';
const PART_RE = /\/part-(\d+)\.jsonl\.gz$/;

export function dayOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** `appStarts/2026/01/02/` for day `2026-01-02`. */
export function dayPrefix(prefix: string, day: string): string {
  return `${prefix}/${day.replaceAll('-', '/')}/`;
}

/** Four digits at least; past 9999 the name just grows (numbers are parsed, never sorted as text). */
export function partKey(prefix: string, day: string, n: number): string {
  return `${dayPrefix(prefix, day)}part-${String(n).padStart(4, '0')}.jsonl.gz`;
}

export function partNumber(key: string): number | undefined {
  const m = PART_RE.exec(key);
  return m ? Number(m[1]) : undefined;
}

/** The canonical identity of a document in a part and in the source: its _id as JSON. */
export function idOf(doc: Record<string, unknown>): string {
  return JSON.stringify(doc._id);
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface Encoded {
  readonly body: Buffer;
  readonly manifest: Manifest;
}

export function encodePart(docs: readonly { atMs: number; doc: Record<string, unknown> }[]): Encoded {
  if (docs.length === 0) throw new Error('a part needs at least one document');
  const text = docs.map((d) => JSON.stringify(d.doc)).join('\n') + '\n';
  const body = gzipSync(Buffer.from(text, 'utf8'));
  const first = docs[0]!;
  const last = docs[docs.length - 1]!;
  return {
    body,
    manifest: {
      count: docs.length,
      sha256: sha256(body),
      firstAtMs: first.atMs,
      lastAtMs: last.atMs,
      firstId: idOf(first.doc),
      lastId: idOf(last.doc),
    },
  };
}

/** A part whose bytes or lines disagree with its manifest: nothing it claims to hold may be deleted. */
export class PartMismatch extends Error {}

/**
 * The part's document ids, read back from its bytes, after checking them against the
 * manifest (sha256 of the bytes, number of lines). Throws PartMismatch otherwise.
 */
export function idsInPart(key: string, body: Buffer, manifest: Manifest): string[] {
  const actual = sha256(body);
  if (actual !== manifest.sha256) throw new PartMismatch(`${key}: sha256 ${actual} but the manifest says ${manifest.sha256}`);
  const lines = gunzipSync(body)
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '');
  if (lines.length !== manifest.count) throw new PartMismatch(`${key}: ${lines.length} lines but the manifest says ${manifest.count}`);
  return lines.map((l) => idOf(JSON.parse(l) as Record<string, unknown>));
}

/** The manifest as S3 user metadata: ASCII header values only, so ids are URI-encoded. */
export function manifestToMetadata(m: Manifest): Record<string, string> {
  return {
    format: FORMAT,
    count: String(m.count),
    sha256: m.sha256,
    'first-at': new Date(m.firstAtMs).toISOString(),
    'last-at': new Date(m.lastAtMs).toISOString(),
    'first-id': encodeURIComponent(m.firstId),
    'last-id': encodeURIComponent(m.lastId),
  };
}

export function manifestFromMetadata(key: string, meta: Record<string, string> | undefined): Manifest {
  const m = meta ?? {};
  const count = Number(m.count);
  const firstAtMs = Date.parse(m['first-at'] ?? '');
  const lastAtMs = Date.parse(m['last-at'] ?? '');
  if (m.format !== FORMAT || !Number.isInteger(count) || !m.sha256 || Number.isNaN(firstAtMs) || Number.isNaN(lastAtMs)) {
    throw new PartMismatch(
      `${key}: no archive manifest in its metadata (format ${m.format ?? 'missing'}): not written by this task, refusing to guess what it holds`,
    );
  }
  return {
    count,
    sha256: m.sha256,
    firstAtMs,
    lastAtMs,
    firstId: decodeURIComponent(m['first-id'] ?? ''),
    lastId: decodeURIComponent(m['last-id'] ?? ''),
  };
}
