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
 * within about that. All messages of a run go out on one Redis connection, chunks as they
 * arrive and a notice only after its tail write, so a notice never overtakes the chunks it
 * covers.
 */
export function logChannel(runId: string): string {
  return keys.logChannel(runId);
}

/** The publishing side, one per attempt of a run, on the daemon that runs the container. */
export class LogPublisher {
  private readonly channel: string;

  constructor(
    private readonly redis: Redis,
    runId: string,
    private readonly attempt: number,
  ) {
    this.channel = logChannel(runId);
  }

  /** Fire-and-forget: a follower that misses one recovers from the stored tail. */
  chunk(offset: number, bytes: Buffer): void {
    this.redis.publish(this.channel, Buffer.concat([Buffer.from(`c ${this.attempt} ${offset}\n`), bytes])).catch(() => undefined);
  }

  tailWritten(end: number): Promise<unknown> {
    return this.redis.publish(this.channel, `t ${this.attempt} ${end}\n`).catch(() => undefined);
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
