import type { Redis } from 'ioredis';
import { EvictingRedisError } from './errors.js';

/** The one policy under which Redis never drops a key to make room: it refuses writes instead. */
export const NO_EVICTION = 'noeviction';

/**
 * The server's `maxmemory-policy`: from CONFIG GET, or, where CONFIG is disabled or renamed
 * (managed services often do that), from `INFO memory`, which every server answers.
 * Undefined when neither says.
 */
export async function maxmemoryPolicy(redis: Redis): Promise<string | undefined> {
  try {
    const [, value] = (await redis.config('GET', 'maxmemory-policy')) as [string?, string?];
    if (value) return value;
  } catch {
    // ERR unknown command (renamed or disabled), NOPERM (an ACL user without CONFIG): ask INFO.
  }
  const info = await redis.info('memory');
  return /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
}

/**
 * Refuses a Redis that may evict keys, at start, before anything is written: a run record,
 * a dedupe key or a queue lock evicted under memory pressure loses a run, runs one twice or
 * strands it, and nothing would say so. `target` names the server in the error.
 * A server that tells neither CONFIG nor INFO (none known) is let through.
 */
export async function assertNoEviction(redis: Redis, target: string): Promise<void> {
  const policy = await maxmemoryPolicy(redis);
  if (policy !== undefined && policy !== NO_EVICTION) throw new EvictingRedisError(target, policy);
}
