import type { Redis } from 'ioredis';
import { keys } from '../runs/keys.js';

/**
 * Which tasks are paused, cluster-wide: a Redis set every daemon reads at each tick, so a
 * pause from any node (API, CLI) holds on all of them at once, and survives restarts.
 */
export class PauseState {
  constructor(private readonly redis: Redis) {}

  async pause(task: string): Promise<void> {
    await this.redis.sadd(keys.paused(), task);
  }

  async resume(task: string): Promise<void> {
    await this.redis.srem(keys.paused(), task);
  }

  async isPaused(task: string): Promise<boolean> {
    return (await this.redis.sismember(keys.paused(), task)) === 1;
  }

  async all(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(keys.paused()));
  }
}
