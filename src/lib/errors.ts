/**
 * A Redis configured to evict keys when it runs out of memory. runlet keeps its run
 * records, dedupe keys, queue jobs and locks there; an evicted key is a run lost, run twice
 * or stranded, silently. BullMQ asks for the same (`maxmemory-policy noeviction`).
 */
export class EvictingRedisError extends Error {
  constructor(
    readonly target: string,
    readonly policy: string,
  ) {
    super(
      `the Redis at ${target} has maxmemory-policy ${policy}: it may evict keys (run records, queued jobs, locks) when memory is full, ` +
        'losing or repeating runs without a trace. Set "maxmemory-policy noeviction" in its redis.conf ' +
        '(or CONFIG SET maxmemory-policy noeviction, then CONFIG REWRITE) and start runlet again',
    );
    this.name = 'EvictingRedisError';
  }
}

/** A Redis URL runlet cannot use; the message says what is wrong and what was expected. */
export class RedisUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUrlError';
  }
}
