import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { keys } from '../runs/keys.js';

/**
 * Who this daemon is: its node (one Docker engine), its cluster (one Redis) and this
 * process. Containers carry all three as labels, which is how a restarted daemon knows
 * what it may settle: its node's, its cluster's, and only those of dead processes.
 */
export interface Identity {
  readonly node: string;
  readonly clusterId: string;
  readonly daemonId: string;
}

export const HEARTBEAT_TTL_MS = 15_000;
const HEARTBEAT_EVERY_MS = 5_000;

export async function clusterIdOf(redis: Redis): Promise<string> {
  // SET NX: the first daemon on a fresh Redis names the cluster; everyone after reads it.
  await redis.set(keys.clusterId(), randomUUID().slice(0, 8), 'NX');
  return (await redis.get(keys.clusterId())) as string;
}

export function newDaemonId(node: string): string {
  return `${node}-${process.pid}-${randomUUID().slice(0, 6)}`;
}

/** Keeps `runlet:daemon:<id>` alive while this process lives; it expires soon after a crash. */
export function startHeartbeat(redis: Redis, identity: Identity, info: Record<string, unknown>): { stop: () => Promise<void> } {
  const key = keys.daemon(identity.daemonId);
  const value = JSON.stringify({ ...info, node: identity.node, host: hostname(), pid: process.pid, startedAt: Date.now() });
  const beat = () => redis.set(key, value, 'PX', HEARTBEAT_TTL_MS).catch(() => undefined);
  void beat();
  const timer = setInterval(beat, HEARTBEAT_EVERY_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await redis.del(key).catch(() => undefined);
    },
  };
}

/**
 * A daemon is alive while its heartbeat has not expired. On this host we need not wait out
 * the expiry: a heartbeat whose process is gone belongs to a daemon that was killed, which
 * lets a restarted daemon settle its predecessor's containers at once.
 */
export async function isDaemonAlive(redis: Redis, daemonId: string | undefined): Promise<boolean> {
  if (!daemonId) return false;
  const raw = await redis.get(keys.daemon(daemonId));
  if (!raw) return false;
  const beat = JSON.parse(raw) as { host?: string; pid?: number };
  if (beat.host === hostname() && beat.pid !== undefined && beat.pid !== process.pid) return pidAlive(beat.pid);
  return true;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function liveDaemons(redis: Redis): Promise<Record<string, unknown>[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', keys.daemon('*'), 'COUNT', 200);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  if (found.length === 0) return [];
  const values = await redis.mget(found);
  return values.flatMap((v, i) => (v ? [{ id: found[i].slice(keys.daemon('').length), ...JSON.parse(v) }] : []));
}
