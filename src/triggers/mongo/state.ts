import type { Redis } from 'ioredis';
import { registerScripts, ScriptCode } from '../../redis/scripts.js';
import { streamKeys } from '../../runs/keys.js';

export type StreamStateName = 'unconfigured' | 'waiting' | 'watching' | 'error';
export type StreamErrorKind = 'historyLost' | 'invalidated' | 'transient';

/** The state hash as read back (see streamKeys.state); '' fields are left out. */
export interface StreamStateRecord {
  readonly state?: StreamStateName;
  readonly holder?: string;
  readonly fence?: number;
  /**
   * The last error, kept after recovery (the state says whether it is current); for
   * `unconfigured`, why the stream is not watched.
   */
  readonly error?: string;
  readonly errorKind?: StreamErrorKind;
  readonly errorAt?: number;
  readonly retryAt?: number;
  readonly lastEventAt?: number;
  readonly lastTokenAt?: number;
  readonly lastClusterTimeMs?: number;
  readonly eventsTotal?: number;
  readonly resetAt?: number;
}

export type StateFields = Partial<Record<keyof StreamStateRecord, string | number>>;

const NUMBERS = new Set(['fence', 'errorAt', 'retryAt', 'lastEventAt', 'lastTokenAt', 'lastClusterTimeMs', 'eventsTotal', 'resetAt']);

export class StreamState {
  constructor(
    private readonly redis: Redis,
    private readonly task: string,
  ) {
    registerScripts(redis);
  }

  /**
   * Only the fence's holder writes the state (writeStreamState-2.lua checks the fence in the
   * same script), so a deposed holder cannot overwrite its successor's.
   */
  async write(fence: number, fields: StateFields): Promise<boolean> {
    const args = Object.entries(fields).flatMap(([f, v]) => [f, String(v ?? '')]);
    return (
      (await this.redis.runletWriteStreamState(streamKeys.state(this.task), streamKeys.fence(this.task), String(fence), ...args)) ===
      ScriptCode.Applied
    );
  }

  /** For the states no lease guards (unconfigured: every daemon writes the same thing). */
  async writeUnfenced(fields: StateFields): Promise<void> {
    await this.redis.hset(streamKeys.state(this.task), Object.fromEntries(Object.entries(fields).map(([f, v]) => [f, String(v ?? '')])));
  }

  read(): Promise<StreamStateRecord> {
    return readState(this.redis, this.task);
  }
}

export async function readState(redis: Redis, task: string): Promise<StreamStateRecord> {
  const raw = await redis.hgetall(streamKeys.state(task));
  const out: Record<string, string | number> = {};
  for (const [f, v] of Object.entries(raw)) if (v !== '') out[f] = NUMBERS.has(f) ? Number(v) : v;
  return out as StreamStateRecord;
}
