import type Docker from 'dockerode';
import type { Logger } from 'pino';

/** How much output a run keeps: the end of it, where the error usually is. */
export const LOG_TAIL_BYTES = 64 * 1024;
/** onOutput is called at most this often, so a chatty task can't flood the run store. */
export const OUTPUT_THROTTLE_MS = 500;

/**
 * The last `capacityBytes` bytes written, as chunks. Older bytes are dropped as new ones
 * arrive, so memory stays bounded whatever a task prints.
 */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bumped on every write, so a reader can tell "changed since I last looked". */
  version = 0;
  /** Bytes pushed since the buffer was made, kept or not: the offset where the tail ends. */
  total = 0;

  constructor(readonly capacityBytes: number = LOG_TAIL_BYTES) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.version++;
    this.total += chunk.length;
    if (chunk.length >= this.capacityBytes) {
      // Copied, so a huge response buffer is not kept alive by a view into it.
      this.chunks = [Buffer.from(chunk.subarray(chunk.length - this.capacityBytes))];
      this.size = this.capacityBytes;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.capacityBytes) {
      const head = this.chunks[0]!;
      const excess = this.size - this.capacityBytes;
      if (head.length <= excess) {
        this.chunks.shift();
        this.size -= head.length;
      } else {
        this.chunks[0] = head.subarray(excess);
        this.size -= excess;
      }
    }
  }

  /**
   * The tail as text. The cut at the front may fall inside a UTF-8 character, and so may the
   * end while a write is still arriving: both partial characters are left out rather than
   * shown as U+FFFD.
   */
  toString(): string {
    return this.snapshot().text;
  }

  /** The tail as text, and the offset in all bytes pushed where that text ends. */
  snapshot(): { text: string; end: number } {
    const bytes = Buffer.concat(this.chunks, this.size);
    let start = 0;
    while (start < bytes.length && start < 3 && (bytes[start]! & 0xc0) === 0x80) start++;
    const upTo = completeUpTo(bytes);
    return { text: bytes.toString('utf8', start, upTo), end: this.total - (bytes.length - upTo) };
  }
}

/** The end offset after dropping a multi-byte character the buffer holds only part of. */
function completeUpTo(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const needed = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return needed > back ? bytes.length - back : bytes.length;
  }
  return bytes.length;
}

/**
 * Docker's multiplexed log format (no TTY): frames of an 8-byte header (stream type, 3
 * zero bytes, big-endian payload size) then the payload. stdout and stderr go into one
 * tail, interleaved as written, so payload bytes are passed on as soon as they arrive, even
 * when a frame is split across chunks: no frame is ever buffered whole.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(8);
  private headerFill = 0;
  private payloadLeft = 0;

  constructor(private readonly onPayload: (bytes: Buffer) => void) {}

  write(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.payloadLeft === 0) {
        const n = Math.min(8 - this.headerFill, chunk.length - i);
        chunk.copy(this.header, this.headerFill, i, i + n);
        this.headerFill += n;
        i += n;
        if (this.headerFill === 8) {
          this.payloadLeft = this.header.readUInt32BE(4);
          this.headerFill = 0;
        }
        continue;
      }
      const n = Math.min(this.payloadLeft, chunk.length - i);
      this.onPayload(chunk.subarray(i, i + n));
      this.payloadLeft -= n;
      i += n;
    }
  }
}

/** Reading a finished log of at most 16 MiB from the local engine takes well under a second; this bounds a stuck one. */
const REREAD_TIMEOUT_MS = 30_000;

/**
 * Follows a container's output into a TailBuffer for as long as the engine streams it.
 * json-file logs are read from the beginning of the file, so attaching after start loses
 * nothing; on a container that already exited the engine sends what it has and ends.
 * `ended` never rejects: missing output must not turn into a failed wait.
 *
 * When the stream breaks while the container still runs (its engine restarted with
 * live-restore), resume() follows again from the start of the log and skips the bytes
 * already read, so the tail and onLog get every byte once, at its offset. (Output past the
 * json-file cap, 16 MiB, has been rotated away and cannot be skipped by count: only then can
 * a resumed stream repeat or miss live chunks. The stored tail is read again after exit anyway.)
 */
export class LogFollower {
  tail = new TailBuffer();
  /** The current stream broke before its end (e.g. the engine restarted): the tail may have a gap. */
  failed = false;
  private stream: { readonly ended: Promise<void>; readonly abort: AbortController; done: boolean };
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastEmitAt = 0;
  private emittedVersion = 0;

  constructor(
    container: Docker.Container,
    private readonly onOutput: ((tail: string, endOffset: number) => void) | undefined,
    private readonly logger: Logger,
    private readonly onLog?: (chunk: Buffer, offset: number) => void,
  ) {
    this.stream = this.open(container, 0);
  }

  /** Resolves when the current stream ends or breaks (see `failed`); never rejects. */
  get ended(): Promise<void> {
    return this.stream.ended;
  }

  /** Whether the current stream is still open (it has neither ended nor broken). */
  get following(): boolean {
    return !this.stream.done;
  }

  /** Follows again, skipping what was already read: after the stream broke under a container that still runs. */
  resume(container: Docker.Container): void {
    if (this.stopped) return;
    this.stream.abort.abort();
    this.failed = false;
    this.stream = this.open(container, this.tail.total);
  }

  /**
   * After exit, when following broke part-way: reads the log again from the start (json-file
   * keeps it until the container is removed) into a fresh tail, so no gap is left inside it.
   */
  async reread(container: Docker.Container): Promise<void> {
    const bytes = await container.logs({ follow: false, stdout: true, stderr: true, abortSignal: AbortSignal.timeout(REREAD_TIMEOUT_MS) });
    const tail = new TailBuffer();
    new FrameDecoder((payload) => tail.push(payload)).write(bytes);
    this.tail = tail;
  }

  /** Stops reading (after exit, when the stream did not end on its own in time). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopped = true;
    this.stream.abort.abort();
  }

  private open(container: Docker.Container, skip: number): LogFollower['stream'] {
    const abort = new AbortController();
    const stream = { abort, done: false, ended: Promise.resolve() };
    stream.ended = this.follow(container, abort.signal, skip)
      .catch((err: unknown) => {
        if (abort.signal.aborted) return;
        this.failed = true;
        this.logger.debug({ err }, 'log stream failed');
      })
      .finally(() => (stream.done = true));
    return stream;
  }

  /** Follows the log from its start, dropping its first `skip` payload bytes (read by an earlier stream). */
  private async follow(container: Docker.Container, signal: AbortSignal, skip: number): Promise<void> {
    // Payload pieces of one stream chunk are handed to onLog together: one call per read.
    let piece: Buffer[] = [];
    let toSkip = skip;
    const decoder = new FrameDecoder((bytes) => {
      if (toSkip > 0) {
        if (bytes.length <= toSkip) {
          toSkip -= bytes.length;
          return;
        }
        bytes = bytes.subarray(toSkip);
        toSkip = 0;
      }
      this.written(bytes);
      if (this.onLog) piece.push(Buffer.from(bytes));
    });
    const stream = await container.logs({
      follow: true,
      stdout: true,
      stderr: true,
      abortSignal: signal,
    } as Docker.ContainerLogsOptions & { follow: true });
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => {
        if (signal.aborted) return;
        const offset = this.tail.total;
        decoder.write(chunk);
        if (piece.length === 0) return;
        const bytes = piece.length === 1 ? piece[0]! : Buffer.concat(piece);
        piece = [];
        try {
          this.onLog?.(bytes, offset);
        } catch (err) {
          this.logger.warn({ err }, 'onLog threw; a live chunk skipped');
        }
      });
      stream.on('end', resolve);
      // A stream torn down under us (the engine went away) closes without 'end': that is a break.
      stream.on('close', () =>
        signal.aborted || (stream as { readableEnded?: boolean }).readableEnded
          ? resolve()
          : reject(new Error('the log stream closed before its end')),
      );
      stream.on('error', reject);
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  private written(bytes: Buffer): void {
    this.tail.push(bytes);
    if (!this.onOutput || this.timer || this.stopped) return;
    const delay = Math.max(0, this.lastEmitAt + OUTPUT_THROTTLE_MS - Date.now());
    this.timer = setTimeout(() => this.emit(), delay);
  }

  private emit(): void {
    this.timer = undefined;
    if (this.tail.version === this.emittedVersion) return;
    this.emittedVersion = this.tail.version;
    this.lastEmitAt = Date.now();
    try {
      const { text, end } = this.tail.snapshot();
      this.onOutput?.(text, end);
    } catch (err) {
      this.logger.warn({ err }, 'onOutput threw; live output skipped once');
    }
  }
}
