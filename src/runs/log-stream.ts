import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { EndedRuns } from './ended.js';
import { keys } from './keys.js';
import { LogCursor } from './log-cursor.js';
import type { RunReader } from './store.js';
import { isTerminal, type RunRecord } from './types.js';

/**
 * Live logs across daemons. The daemon running a container publishes its output on the run's
 * channel (`runlet:logs:<runId>`) as the engine streams it; any daemon's follow endpoint
 * sends the stored tail first, then those chunks, and ends with the run.
 *
 * Every message says where it stands in the output of one attempt:
 *   `c <attempt> <offset>\n<bytes>`   a chunk: the bytes at `offset` of the attempt's output
 *   `t <attempt> <end>\n`             the stored tail was rewritten and now ends at `end`
 * A follower keeps `sent`, the offset up to which it has written (its LogCursor,
 * log-cursor.ts), so it never writes a byte twice nor skips one: a chunk that overlaps what
 * was sent is cut, and a chunk beyond `sent` (published between the last tail write and our
 * subscribe) is held until the tail covers the gap. Every tail write is followed by a `t`
 * notice, and the tail is written at most ~500 ms after the bytes arrive, so the gap closes
 * within about that. All messages of a run go out on one Redis connection, chunks gathered
 * for up to PUBLISH_EVERY_MS and a notice only after its tail write, so a notice never
 * overtakes the chunks it covers. Nothing is published while nobody follows (LogPublisher).
 */
export function logChannel(runId: string): string {
  return keys.logChannel(runId);
}

/** How often a publisher asks Redis whether anyone follows its run (PUBSUB NUMSUB). */
export const FOLLOWER_CHECK_MS = 1000;
/** Chunks are gathered this long and published as one message: a chatty task makes ~20 a second. */
export const PUBLISH_EVERY_MS = 50;
/**
 * Bytes gathered for one message at most; beyond it, output is dropped until the next
 * publish. A follower's cursor then holds what comes after the gap and fills the gap from
 * the stored tail at the next tail notice, saying so when the tail no longer has it.
 */
export const PUBLISH_MAX_BYTES = 256 * 1024;

/**
 * The publishing side, one per attempt of a run, on the daemon that runs the container.
 *
 * It publishes only while someone follows: it asks `PUBSUB NUMSUB` for the run's channel at
 * most once a second (every follower's daemon holds a subscription to it while it follows,
 * LogSubscriptions below), so a run nobody watches costs one small command a second, not a
 * PUBLISH per chunk on the connection that carries the record scripts. A follower that joins
 * is seen within a second; until then it has the stored tail it read after subscribing, and
 * the first tail notice after that closes the gap.
 *
 * While someone follows, chunks are gathered and published at most every
 * PUBLISH_EVERY_MS, with at most one publish in flight and PUBLISH_MAX_BYTES gathered: a task
 * that writes faster than Redis takes it loses live bytes (the tail and the notice cover
 * them), never memory or the shared connection's time.
 */
export class LogPublisher {
  private readonly channel: string;
  /** Whether a follower listened at the last check; undefined before the first answer. */
  private listening: boolean | undefined;
  private checkedAt = -Infinity;
  private checking = false;
  /** Gathered output, contiguous from `offset`. */
  private pieces: Buffer[] = [];
  private offset = 0;
  private bytes = 0;
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<unknown>;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    runId: string,
    private readonly attempt: number,
  ) {
    this.channel = logChannel(runId);
    this.check();
  }

  /** Output at `offset` of the attempt's output, as the engine streams it. */
  chunk(offset: number, bytes: Buffer): void {
    if (this.closed) return;
    this.check();
    if (this.listening === false) return this.drop();
    // Dropped (full, or not contiguous after a drop): what follows starts a new message
    // after the gap, which the follower's cursor fills from the tail.
    if (this.bytes > 0 && offset !== this.offset + this.bytes) return;
    if (this.bytes + bytes.length > PUBLISH_MAX_BYTES) return;
    if (this.bytes === 0) this.offset = offset;
    this.pieces.push(bytes);
    this.bytes += bytes.length;
    this.timer ??= setTimeout(() => void this.flush(), PUBLISH_EVERY_MS);
  }

  /**
   * The stored tail now ends at `end`. Published after the gathered chunks, on the same
   * connection, so it never overtakes them (a follower takes each byte once by offset either way).
   */
  async tailWritten(end: number): Promise<void> {
    this.check();
    if (this.listening !== true) return;
    await this.flush();
    await this.redis.publish(this.channel, `t ${this.attempt} ${end}\n`).catch(() => undefined);
  }

  /** Publishes what is gathered (if anyone listens) and stops. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  private async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // One publish in flight: while Redis is busy with the last one, chunks keep gathering
    // (up to the bound) instead of queueing on the connection.
    while (this.inFlight) await this.inFlight;
    if (this.bytes === 0) return;
    if (this.listening !== true) {
      // Not known to be followed: unknown only before the first check answers; kept till then.
      if (this.listening === false) this.drop();
      else this.timer = setTimeout(() => void this.flush(), PUBLISH_EVERY_MS);
      return;
    }
    const message = Buffer.concat([Buffer.from(`c ${this.attempt} ${this.offset}\n`), ...this.pieces]);
    this.drop();
    const sent = this.redis.publish(this.channel, message).catch(() => undefined);
    this.inFlight = sent;
    await sent;
    this.inFlight = undefined;
  }

  private drop(): void {
    this.pieces = [];
    this.bytes = 0;
  }

  /** Asks whether anyone follows, at most every FOLLOWER_CHECK_MS, without waiting for the answer. */
  private check(): void {
    const now = Date.now();
    if (this.checking || now - this.checkedAt < FOLLOWER_CHECK_MS) return;
    this.checking = true;
    this.checkedAt = now;
    this.redis
      .pubsub('NUMSUB', this.channel)
      .then(
        (reply) => {
          this.listening = Number((reply as [string, number | string])[1]) > 0;
        },
        () => undefined,
      )
      .finally(() => {
        this.checking = false;
      });
  }
}

export type LogMessage = { kind: 'chunk'; attempt: number; offset: number; bytes: Buffer } | { kind: 'tail'; attempt: number; end: number };

export function parseLogMessage(message: Buffer): LogMessage | undefined {
  const nl = message.indexOf(0x0a);
  if (nl < 0) return undefined;
  const [kind, a, n] = message.toString('latin1', 0, nl).split(' ');
  const attempt = Number(a);
  const at = Number(n);
  if (!Number.isInteger(attempt) || !Number.isInteger(at)) return undefined;
  if (kind === 'c') return { kind: 'chunk', attempt, offset: at, bytes: message.subarray(nl + 1) };
  if (kind === 't') return { kind: 'tail', attempt, end: at };
  return undefined;
}

type Listener = (message: LogMessage) => void;

/**
 * One subscriber connection per HTTP server for every follower; a channel is subscribed
 * while at least one follower of that run listens, and unsubscribed when the last leaves.
 */
export class LogSubscriptions {
  private conn?: Redis;
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Per channel, the last (un)subscribe call: the next one waits for it, so they apply in order. */
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(private readonly redis: Redis) {}

  private connection(): Redis {
    if (this.conn) return this.conn;
    const conn = this.redis.duplicate();
    conn.on('error', () => undefined);
    conn.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      const set = this.listeners.get(channel.toString());
      const parsed = set && parseLogMessage(message);
      if (!parsed) return;
      for (const l of set) l(parsed);
    });
    this.conn = conn;
    return conn;
  }

  /** Resolves once Redis confirmed the subscription: messages published after it arrive. */
  async subscribe(runId: string, listener: Listener): Promise<() => Promise<void>> {
    const channel = logChannel(runId);
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    set.add(listener);
    const conn = this.connection();
    await this.serial(channel, () => conn.subscribe(channel));
    return async () => {
      set.delete(listener);
      if (set.size > 0 || this.listeners.get(channel) !== set) return;
      this.listeners.delete(channel);
      await this.serial(channel, () => (this.listeners.has(channel) ? undefined : conn.unsubscribe(channel))).catch(() => undefined);
    };
  }

  private serial(channel: string, step: () => Promise<unknown> | undefined): Promise<unknown> {
    const next = (this.pending.get(channel) ?? Promise.resolve()).catch(() => undefined).then(step);
    this.pending.set(channel, next);
    void next.finally(() => this.pending.get(channel) === next && this.pending.delete(channel)).catch(() => undefined);
    return next;
  }

  close(): void {
    this.listeners.clear();
    this.conn?.disconnect();
    this.conn = undefined;
  }
}

export interface FollowDeps {
  readonly store: RunReader;
  readonly ended: EndedRuns;
  readonly subscriptions: LogSubscriptions;
  readonly logger?: Pick<Logger, 'warn'>;
}

/** EndedRuns.waitFor is asked in slices, so a follower that left stops waiting soon. */
const END_SLICE_MS = 15_000;

/**
 * Writes a run's output to `write`: the stored tail, then what the run prints from then on,
 * each byte once and in order; resolves when the run has ended (after the final tail) or
 * when `signal` aborts (the client left). Resolves false when there is no such run.
 */
export async function followLogs(deps: FollowDeps, runId: string, write: (bytes: Buffer) => void, signal: AbortSignal): Promise<boolean> {
  const cursor = new LogCursor();
  const emit = (pieces: Buffer[]) => {
    for (const bytes of pieces) if (!signal.aborted) write(bytes);
  };
  // Messages and tail reads go through one chain: the cursor sees them in arrival order,
  // and a tail read that awaits Redis is not overtaken by the chunks behind it.
  let chain: Promise<void> = Promise.resolve();
  const step = (work: () => Promise<void> | void) => {
    chain = chain.then(work).catch((err) => deps.logger?.warn({ err, runId }, 'log follow step failed'));
    return chain;
  };
  const fillFromTail = async () => {
    const snap = await deps.store.logSnapshot(runId);
    if (snap) emit(cursor.fromTail(snap));
  };

  const unsubscribe = await deps.subscriptions.subscribe(runId, (m) => {
    void step(async () => {
      if (m.attempt < cursor.attempt) return;
      emit(cursor.toAttempt(m.attempt));
      if (m.kind === 'chunk') emit(cursor.take(m.offset, m.bytes));
      else if (m.end > cursor.sent) {
        // We missed chunks (published before we subscribed): the tail now covers them.
        await fillFromTail();
      }
    });
  });
  try {
    // Subscribed first, then the tail: whatever was published before the subscribe is in
    // the tail or comes in a later tail write; nothing falls between the two.
    const first = await deps.store.logSnapshot(runId);
    if (!first) return false;
    await step(fillFromTail);
    if (isTerminal(first.status!)) return true;
    while (!signal.aborted) {
      const done = await endedOrAborted(deps.ended, runId, signal);
      if (done === 'aborted') break;
      if (done) {
        // Recorded after its final tail (finish() writes the tail first): complete it.
        await step(fillFromTail);
        break;
      }
      const snap = await deps.store.logSnapshot(runId);
      if (!snap) break;
      if (snap.status && isTerminal(snap.status)) {
        await step(fillFromTail);
        break;
      }
    }
    return true;
  } finally {
    await unsubscribe();
  }
}

/**
 * One slice of waiting for the run's end. The abort listener is removed when the slice is
 * over: added once per slice and left, a follower of a long run piles them up on the signal.
 */
async function endedOrAborted(ended: EndedRuns, runId: string, signal: AbortSignal): Promise<RunRecord | undefined | 'aborted'> {
  let onAbort = () => {};
  const aborted = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted');
  });
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.race([ended.waitFor(runId, END_SLICE_MS), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
