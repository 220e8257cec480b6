/**
 * A task's `secrets:` values, masked as `***` in what runlet keeps and shows of a run's
 * output (the stored tail, live logs, the failure reason), as GitHub Actions masks secrets in
 * workflow logs. The container itself sees and prints the real value; only runlet's copy of
 * the output is masked, so the mask is applied where output becomes a tail or a live chunk
 * (dispatch/run-job.ts waitAndFinish), before anything is written to Redis.
 */

export const MASK = '***';

/**
 * Values shorter than this are not masked: a secret like "1" or "yes" would turn every such
 * character or word in the output into ***, and a value that short protects nothing anyway.
 * GitHub masks every registered value; the Azure Pipelines agent (whose masker GitHub's runner
 * derives from) lets an operator skip short ones (AZP_IGNORE_SECRETS_SHORTER_THAN). runlet
 * takes 4, and the README says so.
 */
export const MIN_MASKED_LENGTH = 4;

/**
 * The byte strings to mask for these secret values, longest first (so a secret that contains
 * another is masked whole). A multi-line value is also masked line by line, as GitHub does:
 * a program that prints it often prints one line of it at a time, or with other line endings.
 */
export function maskedValues(secrets: Iterable<string>): Buffer[] {
  const values = new Set<string>();
  for (const secret of secrets) {
    values.add(secret);
    for (const line of secret.split(/\r?\n/)) values.add(line);
  }
  return [...values]
    .filter((v) => v.length >= MIN_MASKED_LENGTH)
    .sort((a, b) => Buffer.byteLength(b) - Buffer.byteLength(a))
    .map((v) => Buffer.from(v));
}

/** The tail a masked stream is kept in; runtime/log-tail.ts's TailBuffer is one. */
export interface TailSink {
  push(bytes: Buffer): void;
  snapshot(): { text: string; end: number };
}

/** What of a run's result the mask rewrites; the rest passes as it is. */
interface ResultText {
  readonly logTail: string;
  readonly logBytes?: number;
  readonly reason?: string;
}

/**
 * One attempt's output, masked as it streams. A secret may arrive split across two chunks,
 * so the end of what came so far is held back (the "carry") while it could be the start of a
 * secret: at most the longest secret's length less one byte, and usually nothing (only a
 * suffix that is a prefix of some secret is held). The masked output is a stream of its own
 * with its own offsets: live chunks and the stored tail are both in those offsets, which is
 * all a follower's cursor (log-cursor.ts) compares. With no secrets it is the identity and
 * the runtime's own tail and offsets pass through unchanged.
 */
export class OutputMask {
  private readonly values: Buffer[];
  private carry: Buffer = Buffer.alloc(0);
  /** Raw bytes taken in (including the carry). */
  private raw = 0;
  /** Masked bytes put out: the offset the next masked chunk starts at. */
  private masked = 0;

  constructor(
    secrets: Iterable<string>,
    private readonly tail: TailSink,
  ) {
    this.values = maskedValues(secrets);
  }

  get active(): boolean {
    return this.values.length > 0;
  }

  /** The raw chunk at raw `offset`, as a masked chunk at its masked offset (undefined when all of it is held). */
  chunk(bytes: Buffer, offset: number): { bytes: Buffer; offset: number } | undefined {
    if (!this.active) return { bytes, offset };
    // A repeat of bytes already taken (a resumed stream) is skipped; a gap cannot be filled here.
    if (offset < this.raw) bytes = bytes.subarray(Math.min(bytes.length, this.raw - offset));
    if (bytes.length === 0) return undefined;
    this.raw += bytes.length;
    const out = this.mask(Buffer.concat([this.carry, bytes]), false);
    if (out.length === 0) return undefined;
    const at = this.masked;
    this.masked += out.length;
    this.tail.push(out);
    return { bytes: out, offset: at };
  }

  /** The stored tail for the runtime's (raw) tail: the masked stream's own when masking. */
  tailFor(text: string, end: number): { text: string; end: number } {
    return this.active ? this.tail.snapshot() : { text, end };
  }

  /**
   * The run's result with its tail, end and reason masked. The runtime reads the finished log
   * again after exit (raw), so what it has beyond the bytes streamed here is masked on: the
   * final tail continues the live stream's offsets. When the two do not line up (the stream
   * broke and the tail no longer reaches back to it), the raw tail is masked as a whole and
   * its position left unknown.
   */
  result<R extends ResultText>(r: R): R {
    if (!this.active) return r;
    const reason = r.reason === undefined ? {} : { reason: maskText(r.reason, this.values) };
    const rawTail = Buffer.from(r.logTail);
    const rawStart = (r.logBytes ?? 0) - rawTail.length;
    if (r.logBytes !== undefined && rawStart <= this.raw && this.raw <= r.logBytes) {
      const rest = rawTail.subarray(this.raw - rawStart);
      this.raw += rest.length;
      const out = this.mask(Buffer.concat([this.carry, rest]), true);
      this.masked += out.length;
      this.tail.push(out);
      const { text, end } = this.tail.snapshot();
      return { ...r, ...reason, logTail: text, logBytes: end };
    }
    const { logBytes: _unknown, ...rest } = r;
    return { ...rest, ...reason, logTail: maskText(r.logTail, this.values, rawStart > 0) } as R;
  }

  /** Masks `buf`; unless `final`, holds back its end while that could start a secret. */
  private mask(buf: Buffer, final: boolean): Buffer {
    const out: Buffer[] = [];
    let i = 0;
    for (;;) {
      const hit = nextMatch(buf, i, this.values);
      if (!hit) break;
      out.push(buf.subarray(i, hit.at), MASK_BYTES);
      i = hit.at + hit.length;
    }
    const keep = final ? 0 : heldBack(buf.subarray(i), this.values);
    out.push(buf.subarray(i, buf.length - keep));
    this.carry = Buffer.from(buf.subarray(buf.length - keep));
    return Buffer.concat(out);
  }
}

const MASK_BYTES = Buffer.from(MASK);

/** The earliest occurrence of any value at or after `from` (the longest one at a tie). */
function nextMatch(buf: Buffer, from: number, values: readonly Buffer[]): { at: number; length: number } | undefined {
  let best: { at: number; length: number } | undefined;
  for (const v of values) {
    const at = buf.indexOf(v, from);
    if (at >= 0 && (!best || at < best.at)) best = { at, length: v.length };
  }
  return best;
}

/** Length of the longest end of `rest` that is the start of some value (values are longest first). */
function heldBack(rest: Buffer, values: readonly Buffer[]): number {
  let keep = 0;
  for (const v of values) {
    for (let k = Math.min(v.length - 1, rest.length); k > keep; k--) {
      if (rest[rest.length - k] === v[0] && rest.subarray(rest.length - k).equals(v.subarray(0, k))) {
        keep = k;
        break;
      }
    }
  }
  return keep;
}

/**
 * Masks a whole text at once (a reason, or a tail that cannot join the stream). `cutAtFront`:
 * the text is the end of a longer output, so it may begin with the end of a secret, which is
 * masked too.
 */
export function maskText(text: string, values: readonly Buffer[], cutAtFront = false): string {
  if (values.length === 0) return text;
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  let i = 0;
  if (cutAtFront) {
    for (const v of values) {
      let k = Math.min(v.length - 1, bytes.length);
      while (k > 0 && !bytes.subarray(0, k).equals(v.subarray(v.length - k))) k--;
      if (k > i) i = k;
    }
    if (i > 0) out.push(MASK_BYTES);
  }
  for (;;) {
    const hit = nextMatch(bytes, i, values);
    if (!hit) break;
    out.push(bytes.subarray(i, hit.at), MASK_BYTES);
    i = hit.at + hit.length;
  }
  out.push(bytes.subarray(i));
  return Buffer.concat(out).toString();
}
