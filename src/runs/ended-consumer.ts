import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { keys } from './keys.js';
import { parseEnded, type EndedEntry } from './ended.js';
import type { RedisEpoch } from './epoch.js';

const BLOCK_MS = 5_000;

/** What a handler tells the loop: acknowledge the entry now, or later through `ack()`. */
export type Handled = 'ack' | 'defer';

export interface EndedConsumerOptions {
  readonly redis: Redis;
  /** The consumer group; each reader of the stream (chaining, alerts) has its own. */
  readonly group: string;
  /** This daemon, as the group's consumer. */
  readonly consumer: string;
  readonly logger: Logger;
  /** An entry taken but not acknowledged for this long is taken over: its daemon died. */
  readonly claimIdleMs: number;
  /** For log lines: what the entries are read for. */
  readonly purpose: string;
  /** Told of a NOGROUP (Redis came back empty), and re-creates the group when it notices one. */
  readonly epoch?: RedisEpoch;
  handle(entry: EndedEntry): Promise<Handled>;
}

/**
 * One consumer of the ended-runs stream in a consumer group: every daemon reads in the
 * group, so each entry goes to one daemon. New entries are read with '>'; every
 * claimIdleMs/2 the entries another consumer took and never acknowledged (it died) are
 * claimed and handled here. An entry is acknowledged only after its handler is done with
 * it (or, for a deferring handler, when it calls `ack`), so a daemon that dies in between
 * leaves it to another: each entry is handled at least once, and handlers make that once
 * in effect (dedupe keys, sent markers).
 */
export class EndedConsumer {
  private stopped = false;
  private reader?: Redis;
  private loop?: Promise<void>;

  constructor(private readonly opts: EndedConsumerOptions) {}

  /**
   * Creates the group if it does not exist, reading from `from` (the entry id after which
   * it starts; '$': from now): runs that ended before this reader was first configured are
   * not its business. A group that exists is joined where it is.
   */
  async start(from = '$'): Promise<void> {
    await this.createGroup(from);
    // Registered for the daemon's life; a consumer a reload replaced does nothing.
    this.opts.epoch?.onEmpty(`the ${this.opts.purpose} consumer group`, async () => void (this.stopped || (await this.createGroup('0'))));
    const reader = this.opts.redis.duplicate();
    reader.on('error', () => undefined);
    this.reader = reader;
    this.loop = this.consume(reader);
  }

  /**
   * At start from '$' (see start). Re-created after Redis came back empty from '0': the
   * flush took every entry of before, so whatever the stream holds now was written after it
   * (runs that ended since), and those must not be missed; '$' would skip the ones written
   * between the emptying and this call, up to a check period of ended runs whose followers
   * and alerts would never come. (A Redis restored from an old snapshot may hold older
   * entries too; those are handled again, which dedupe keys and sent markers make harmless
   * where they survived.) BUSYGROUP: a peer or an earlier call made it already.
   */
  private async createGroup(from: string): Promise<void> {
    await this.opts.redis.xgroup('CREATE', keys.ended(), this.opts.group, from, 'MKSTREAM').catch((err: Error) => {
      if (!/BUSYGROUP/.test(err.message)) throw err;
    });
  }

  private async consume(reader: Redis): Promise<void> {
    const { group, consumer, claimIdleMs } = this.opts;
    let lastClaim = 0;
    while (!this.stopped) {
      try {
        if (Date.now() - lastClaim >= claimIdleMs / 2) {
          lastClaim = Date.now();
          await this.claimAbandoned(reader);
        }
        const reply = await reader.xreadgroup(
          'GROUP',
          group,
          consumer,
          'COUNT',
          100,
          'BLOCK',
          Math.min(BLOCK_MS, claimIdleMs),
          'STREAMS',
          keys.ended(),
          '>',
        );
        for (const entry of parseEnded(reply)) await this.handle(entry);
      } catch (err) {
        if (this.stopped) return;
        // The group is gone: Redis came back empty. This reader puts its own group back
        // itself (a peer that restored the marker first may not read for the same purpose),
        // and the epoch check puts back the rest.
        if (/NOGROUP/.test((err as Error).message)) {
          await this.createGroup('0').catch(() => undefined);
          await this.opts.epoch?.check().catch(() => undefined);
        }
        this.opts.logger.warn({ err }, `reading ended runs for ${this.opts.purpose} failed; retrying`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Entries another daemon took and never acknowledged (it died): handled here instead. */
  private async claimAbandoned(reader: Redis): Promise<void> {
    let cursor = '0-0';
    do {
      const [next, entries] = (await reader.xautoclaim(
        keys.ended(),
        this.opts.group,
        this.opts.consumer,
        this.opts.claimIdleMs,
        cursor,
        'COUNT',
        100,
      )) as [string, [string, string[]][]];
      for (const entry of parseEnded([[keys.ended(), entries.filter((e) => e !== null)]])) await this.handle(entry);
      cursor = next;
    } while (cursor !== '0-0' && !this.stopped);
  }

  private async handle(entry: EndedEntry): Promise<void> {
    if ((await this.opts.handle(entry)) === 'ack') await this.ack(entry.id);
  }

  async ack(id: string): Promise<void> {
    await this.opts.redis.xack(keys.ended(), this.opts.group, id);
  }

  /**
   * Resets the idle time of entries this daemon holds but has not finished (a deferring
   * handler's backlog), so other daemons do not take them over while this one is alive.
   * JUSTID: the delivery count stays as it is.
   */
  async touch(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.opts.redis.xclaim(keys.ended(), this.opts.group, this.opts.consumer, 0, ...ids, 'JUSTID');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reader?.disconnect();
    await this.loop?.catch(() => undefined);
  }

  /**
   * After `stop`, where a group that replaces this one (a reload changed what the entries
   * are read for) starts reading, so that no entry falls between the two: just before the
   * first entry this consumer took and did not acknowledge, else after the last entry
   * delivered in this group. Entries up to there were handled under the old config.
   */
  async handOverPoint(): Promise<string> {
    const { redis, group, consumer } = this.opts;
    const mine = (await redis.xpending(keys.ended(), group, '-', '+', 1, consumer).catch(() => [])) as [string, ...unknown[]][];
    if (mine[0]) return idBefore(mine[0][0]);
    const groups = (await redis.xinfo('GROUPS', keys.ended()).catch(() => [])) as unknown[][];
    for (const fields of groups) {
      const info = new Map<unknown, unknown>();
      for (let i = 0; i + 1 < fields.length; i += 2) info.set(fields[i], fields[i + 1]);
      if (info.get('name') === group) return String(info.get('last-delivered-id'));
    }
    return '$';
  }
}

/** The stream id just before `id` ("<ms>-<seq>"): a group created there delivers `id` first. */
export function idBefore(id: string): string {
  const [ms, seq] = id.split('-').map(BigInt) as [bigint, bigint];
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-18446744073709551615` : '0-0';
}

/** Id of the newest entry of the ended-runs stream ('0-0' when it has none): where this daemon's new consumer groups start. */
export async function newestEnded(redis: Redis): Promise<string> {
  const [last] = (await redis.xrevrange(keys.ended(), '+', '-', 'COUNT', 1)) as [string, string[]][];
  return last ? last[0] : '0-0';
}
