import type { Redis } from 'ioredis';
import { keys } from './keys.js';

/**
 * Who did what on the ops API, as a Redis stream (`runlet:audit`) capped at AUDIT_MAXLEN
 * entries (approximately: XADD MAXLEN ~, so trimming stays cheap). An action on a run also
 * names its actor on the run's record (`requestedBy` on a manual run or a retry's new run,
 * `cancelledBy` on a cancelled one), so the run's page shows it without the stream.
 *
 * Written after the action succeeded, not with it: a daemon that dies in between has done the
 * action without its audit entry (at most once, never an entry for something not done).
 */
export const AUDIT_MAXLEN = 10_000;

export interface AuditEntry {
  /** The stream id, which orders entries. */
  readonly id: string;
  readonly at: string;
  readonly who: string;
  readonly role: string;
  /** run, cancel, retry, pause, resume, backfill, reload, stream-reset */
  readonly action: string;
  /** The task, run or file acted on. */
  readonly target: string;
  readonly run?: string;
}

export type AuditAction = Omit<AuditEntry, 'id' | 'at'> & {
  /** The run whose record names the actor, and in which field. */
  readonly mark?: { readonly run: string; readonly field: 'requestedBy' | 'cancelledBy' };
};

export class AuditLog {
  constructor(private readonly redis: Redis) {}

  async record(action: AuditAction, now = Date.now()): Promise<void> {
    const { mark, ...entry } = action;
    const fields = Object.entries({ at: new Date(now).toISOString(), ...entry }).flatMap(([k, v]) =>
      v === undefined ? [] : [k, String(v)],
    );
    await this.redis.xadd(keys.audit(), 'MAXLEN', '~', String(AUDIT_MAXLEN), '*', ...fields);
    // The run exists: it was just made or is in progress, and retention never deletes those.
    if (mark && (await this.redis.exists(keys.run(mark.run)))) await this.redis.hset(keys.run(mark.run), mark.field, action.who);
  }

  /** The newest `limit` entries, newest first. */
  async latest(limit: number): Promise<AuditEntry[]> {
    const rows = await this.redis.xrevrange(keys.audit(), '+', '-', 'COUNT', limit);
    return rows.map(([id, flat]) => {
      const o: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) o[flat[i]!] = flat[i + 1]!;
      return {
        id,
        at: o.at ?? '',
        who: o.who ?? '',
        role: o.role ?? '',
        action: o.action ?? '',
        target: o.target ?? '',
        ...(o.run && { run: o.run }),
      };
    });
  }
}
