import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BSON } from 'mongodb';
import { streamKeys } from './keys.js';

/**
 * Store: KEYS[1] token, KEYS[2] fence, KEYS[3] state hash;
 * ARGV[1] the writer's fence, ARGV[2] token text, ARGV[3] now (ms), ARGV[4] '1' for a change
 * event ('0' for a checkpoint), ARGV[5] the event's cluster time in ms or ''.
 * Returns 1 stored, 0 when the fence has moved on: a newer holder (or a reset) owns the
 * cursor, and a deposed holder that wakes up late cannot move it back.
 */
const STORE = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[3], 'lastTokenAt', ARGV[3])
if ARGV[4] == '1' then
  redis.call('HINCRBY', KEYS[3], 'eventsTotal', 1)
  redis.call('HSET', KEYS[3], 'lastEventAt', ARGV[3], 'lastClusterTimeMs', ARGV[5])
end
return 1
`;

/**
 * Reset: KEYS[1] token, KEYS[2] lease, KEYS[3] fence, KEYS[4] state hash; ARGV[1] now (ms).
 * Forgets the cursor and the lease and moves the fence, so the current holder (if any) can
 * store nothing more, notices at its next renew, and whoever acquires next opens at "now".
 * Returns the new fence.
 */
const RESET = `
redis.call('DEL', KEYS[1], KEYS[2])
local fence = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[4], 'state', 'waiting', 'holder', '', 'retryAt', '', 'resetAt', ARGV[1])
return fence
`;

/** Canonical EJSON keeps every BSON type of a token (a v0 token's BinData), so it resumes as it was. */
export function tokenToText(token: unknown): string {
  return BSON.EJSON.stringify(token as BSON.Document, { relaxed: false });
}

export function tokenFromText(text: string): unknown {
  return BSON.EJSON.parse(text, { relaxed: false });
}

const MAX_KEY_TOKEN_CHARS = 200;

/**
 * The token as a short stable string for dedupe keys: its `_data` (the hex string MongoDB
 * 4.2+ puts there) when it has one of modest length, else a sha256 of its canonical text.
 * The same change yields the same token on every stream opened with the same options, so
 * the same string on every daemon.
 */
export function tokenKey(token: unknown): string {
  const data = (token as { _data?: unknown } | null)?._data;
  if (typeof data === 'string' && data.length > 0 && data.length <= MAX_KEY_TOKEN_CHARS) return data;
  return `sha256:${createHash('sha256').update(tokenToText(token)).digest('hex')}`;
}

/** The resume token of one task's stream, in Redis, written only by the fence's holder. */
export class StreamCursor {
  constructor(
    private readonly redis: Redis,
    private readonly task: string,
  ) {}

  async load(): Promise<unknown | undefined> {
    const text = await this.redis.get(streamKeys.token(this.task));
    return text === null ? undefined : tokenFromText(text);
  }

  /** False when `fence` is no longer the latest: nothing was written, and the caller must stop. */
  async store(fence: number, token: unknown, event?: { clusterTimeMs?: number }, now = Date.now()): Promise<boolean> {
    const k = streamKeys;
    const res = await this.redis.eval(
      STORE,
      3,
      k.token(this.task),
      k.fence(this.task),
      k.state(this.task),
      String(fence),
      tokenToText(token),
      now,
      event ? '1' : '0',
      event?.clusterTimeMs ?? '',
    );
    return res === 1;
  }
}

export async function resetStream(redis: Redis, task: string, now = Date.now()): Promise<number> {
  const k = streamKeys;
  return (await redis.eval(RESET, 4, k.token(task), k.lease(task), k.fence(task), k.state(task), now)) as number;
}
