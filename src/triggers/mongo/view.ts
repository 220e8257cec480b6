import type { Redis } from 'ioredis';
import type { TaskConfig } from '../../config/types.js';
import { streamKeys } from '../../runs/keys.js';
import { readLease } from './lease.js';
import { tokenFromText, tokenKey } from './cursor.js';
import { readState, type StreamErrorKind, type StreamStateName } from './state.js';
import { UNCONFIGURED_REASON } from './watcher.js';

/** One task's change stream as the ops API shows it, read from Redis (so the same from any daemon). */
export interface StreamView {
  task: string;
  db: string;
  collection: string;
  operations: readonly string[];
  state: StreamStateName;
  /** Why the stream is unconfigured or in error; null otherwise. */
  reason: string | null;
  /** The daemon that holds the lease, and so consumes the stream. */
  holder: string | null;
  fence: number | null;
  leaseExpiresInMs: number | null;
  /** The stored resume token (as used in dedupe keys); null: the next open starts at "now". */
  resumeToken: string | null;
  eventsTotal: number;
  lastEventAt: string | null;
  lastTokenAt: string | null;
  /** How old the last change was (by the oplog's clock) when its run was recorded. */
  lagMs: number | null;
  /** The last error, kept after the stream recovered. */
  lastError: { kind: StreamErrorKind | null; message: string; at: string | null } | null;
  retryAt: string | null;
  resetAt: string | null;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export async function describeStream(redis: Redis, task: TaskConfig & { mongo: NonNullable<TaskConfig['mongo']> }): Promise<StreamView> {
  const m = task.mongo;
  const [st, lease, tokenText] = await Promise.all([
    readState(redis, task.name),
    readLease(redis, task.name),
    redis.get(streamKeys.token(task.name)),
  ]);
  let state: StreamStateName = st.state ?? 'waiting';
  if (m.url === undefined) state = 'unconfigured';
  else if (state === 'unconfigured')
    state = 'waiting'; // the config gained a url since
  // A holder that died leaves "watching" behind; without its lease no one watches until the next takes over.
  else if (state === 'watching' && !lease) state = 'waiting';
  let resumeToken: string | null = null;
  if (tokenText !== null) {
    try {
      resumeToken = tokenKey(tokenFromText(tokenText));
    } catch {
      resumeToken = '(unreadable)';
    }
  }
  const isUnconfigured = state === 'unconfigured';
  return {
    task: task.name,
    db: m.db,
    collection: m.collection,
    operations: m.operations,
    state,
    reason: isUnconfigured ? UNCONFIGURED_REASON : state === 'error' ? (st.error ?? null) : null,
    holder: lease?.holder ?? null,
    fence: lease?.fence ?? null,
    leaseExpiresInMs: lease?.expiresInMs ?? null,
    resumeToken,
    eventsTotal: st.eventsTotal ?? 0,
    lastEventAt: iso(st.lastEventAt),
    lastTokenAt: iso(st.lastTokenAt),
    lagMs: st.lastEventAt !== undefined && st.lastClusterTimeMs !== undefined ? Math.max(0, st.lastEventAt - st.lastClusterTimeMs) : null,
    lastError: !isUnconfigured && st.error ? { kind: st.errorKind ?? null, message: st.error, at: iso(st.errorAt) } : null,
    retryAt: state === 'error' ? iso(st.retryAt) : null,
    resetAt: iso(st.resetAt),
  };
}
