import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { keys } from './keys.js';
import type { RunStore } from './store.js';
import { isTerminal, type RunRecord, type RunStatus } from './types.js';

export interface EndedEntry {
  /** The stream entry id: entries are ordered, so a reader can resume after it. */
  readonly id: string;
  readonly run: string;
  readonly task: string;
  readonly status: RunStatus;
}

/** Reads `XREAD`/`XREADGROUP` replies into entries. */
export function parseEnded(reply: unknown): EndedEntry[] {
  const out: EndedEntry[] = [];
  for (const [, entries] of (reply ?? []) as [string, [string, string[]][]][]) {
    for (const [id, flat] of entries) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
      if (f.run && f.task && f.status) out.push({ id, run: f.run, task: f.task, status: f.status as RunStatus });
    }
  }
  return out;
}

interface Waiter {
  resolve(run: RunRecord | undefined): void;
}

/**
 * Lets any daemon wait for any run to end, whichever daemon runs it: one connection per
 * daemon tails the ended-runs stream (written by the same script that records a terminal
 * status) and wakes the waiters of each run that ends. Reading from the last id seen, a
 * reconnect misses nothing; a waiter also checks the record once when it starts, so a run
 * that ended before the wait began is answered at once.
 */
export class EndedRuns {
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Told of every run that ends, in stream order (the task gate frees slots by it). */
  private readonly listeners: Array<(entry: EndedEntry) => void> = [];
  private reader?: Redis;
  private stopped = false;
  private loop?: Promise<void>;

  constructor(
    private readonly redis: Redis,
    private readonly store: RunStore,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const reader = this.redis.duplicate();
    reader.on('error', () => undefined);
    this.reader = reader;
    this.loop = this.tail(reader);
  }

  private async tail(first: Redis): Promise<void> {
    // Pinned to the newest entry before the first read (never '$' in a loop, which would
    // skip entries added between two reads). Older ends are answered by waitFor's own check.
    let last: string | undefined;
    let reader = first;
    while (!this.stopped) {
      try {
        // A connection that gave up for good (seen after a Sentinel failover) is replaced:
        // everything that frees a task slot or answers a waiter depends on this reader.
        if (reader.status === 'end') {
          reader = this.redis.duplicate();
          reader.on('error', () => undefined);
          this.reader = reader;
        }
        last ??= (await this.newestId(reader)) ?? '0-0';
        const reply = await reader.xread('BLOCK', 5000, 'STREAMS', keys.ended(), last);
        for (const entry of parseEnded(reply)) {
          last = entry.id;
          for (const listener of this.listeners) listener(entry);
          if (this.waiters.has(entry.run)) await this.settle(entry.run);
        }
      } catch (err) {
        if (this.stopped) return;
        this.logger.warn({ err }, 'reading ended runs failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
        // Whatever ended while the connection was down is in the record: look again.
        for (const runId of [...this.waiters.keys()]) await this.settle(runId).catch(() => undefined);
      }
    }
  }

  /**
   * Calls `listener` for each run that ends from now on while this reader runs. At most
   * once per end per daemon, and not for ends while no daemon reads: a listener that must
   * not miss one has a sweep of its own (gate.ts).
   */
  onEnded(listener: (entry: EndedEntry) => void): void {
    this.listeners.push(listener);
  }

  private async newestId(reader: Redis): Promise<string | undefined> {
    const [entry] = (await reader.xrevrange(keys.ended(), '+', '-', 'COUNT', 1)) as [string, string[]][];
    return entry?.[0];
  }

  private async settle(runId: string): Promise<void> {
    const run = await this.store.get(runId, { withLogs: true });
    if (!run || !isTerminal(run.status)) return;
    const set = this.waiters.get(runId);
    this.waiters.delete(runId);
    for (const w of set ?? []) w.resolve(run);
  }

  /**
   * The run's record (with output and log tail) once it has ended; undefined when it has
   * not ended within `timeoutMs` or does not exist.
   */
  async waitFor(runId: string, timeoutMs: number): Promise<RunRecord | undefined> {
    return new Promise<RunRecord | undefined>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const set = this.waiters.get(runId) ?? new Set<Waiter>();
      // Every way a wait ends (the stream, the first check, the timeout, stop) goes through
      // here and takes the waiter out: a wait answered by its first check (the run had
      // already ended: a redelivery, a skipped run) would otherwise stay registered for good.
      const waiter: Waiter = {
        resolve: (run) => {
          if (timer) clearTimeout(timer);
          set.delete(waiter);
          if (set.size === 0 && this.waiters.get(runId) === set) this.waiters.delete(runId);
          resolve(run);
        },
      };
      set.add(waiter);
      this.waiters.set(runId, set);
      timer = setTimeout(() => waiter.resolve(undefined), timeoutMs);
      // Registered before this check, so an end between the check and the stream read
      // is seen by one of them.
      this.store.get(runId, { withLogs: true }).then(
        (run) => {
          if (!run) waiter.resolve(undefined);
          else if (isTerminal(run.status)) waiter.resolve(run);
        },
        () => undefined,
      );
    });
  }

  /** How many waits are registered now (each ends with its run, its timeout or stop). */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reader?.disconnect();
    await this.loop?.catch(() => undefined);
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.resolve(undefined);
    this.waiters.clear();
  }
}
