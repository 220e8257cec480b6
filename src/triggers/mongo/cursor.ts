import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BSON } from 'mongodb';
import { registerScripts, ScriptCode } from '../../redis/scripts.js';
import { streamKeys } from '../../runs/keys.js';

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

/**
 * The resume token of one task's stream, in Redis, written only by the fence's holder
 * (storeCursor-3.lua checks the fence in the same script that writes), so a deposed holder
 * that wakes up late cannot move it back.
 */
export class StreamCursor {
  constructor(
    private readonly redis: Redis,
    private readonly task: string,
  ) {
    registerScripts(redis);
  }

  async load(): Promise<unknown | undefined> {
    const text = await this.redis.get(streamKeys.token(this.task));
    return text === null ? undefined : tokenFromText(text);
  }

  /** False when `fence` is no longer the latest: nothing was written, and the caller must stop. */
  async store(fence: number, token: unknown, event?: { clusterTimeMs?: number }, now = Date.now()): Promise<boolean> {
    const k = streamKeys;
    const code = await this.redis.runletStoreCursor(
      k.token(this.task),
      k.fence(this.task),
      k.state(this.task),
      String(fence),
      tokenToText(token),
      now,
      event ? '1' : '0',
      event?.clusterTimeMs ?? '',
    );
    return code === ScriptCode.Applied;
  }
}

/**
 * Forgets the stream's cursor and lease and moves its fence (resetStream-4.lua), so the
 * current holder can store nothing more and whoever acquires next opens at "now". Returns
 * the new fence.
 */
export async function resetStream(redis: Redis, task: string, now = Date.now()): Promise<number> {
  const k = streamKeys;
  return registerScripts(redis).runletResetStream(k.token(task), k.lease(task), k.fence(task), k.state(task), now);
}
