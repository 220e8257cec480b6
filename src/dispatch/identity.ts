import type { Redis } from 'ioredis';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
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

/**
 * A daemon's heartbeat lives as long as its queue jobs' locks (the lease, RUNLET_STALLED_MS,
 * default 30 s) and is written every third of it. Not shorter: a job whose lock lapsed is
 * redelivered, and the node it reaches judges the holder by its heartbeat; a heartbeat that
 * lapsed first (it was 15 s against a 30 s lock) would have a daemon that was merely slow for
 * a moment declared dead as soon as anything looked.
 */
export const DEFAULT_LEASE_MS = 30_000;

/**
 * Random per process start, in every heartbeat this process writes. A pid does not tell two
 * processes apart over time: in the shipped image node is PID 1 and `restart: unless-stopped`
 * keeps the hostname, so a restarted daemon sees its predecessor's heartbeat with its own
 * host and pid. The boot id does. Per process, not per daemon: several daemons may run in
 * one process (tests, an embedding), and those are all alive while this process is.
 */
const PROCESS_BOOT = randomUUID();

/**
 * The cluster id Redis holds; on a Redis without one, `remembered` (the id this node last
 * ran under, kept in its data dir) or a new random one. `restored` is true when Redis had
 * none and the remembered id was put back: Redis was emptied while no daemon ran (a restart
 * without its append-only file), and the containers left running carry that id.
 */
export async function clusterIdOf(redis: Redis, remembered?: string): Promise<string> {
  const { id } = await clusterIdFor(redis, remembered);
  return id;
}

export async function clusterIdFor(redis: Redis, remembered?: string): Promise<{ id: string; restored: boolean }> {
  // SET NX: the first daemon on a fresh Redis names the cluster; everyone after reads it.
  const set = await redis.set(keys.clusterId(), remembered ?? randomUUID().slice(0, 8), 'NX');
  return { id: (await redis.get(keys.clusterId())) as string, restored: set === 'OK' && remembered !== undefined };
}

/**
 * Where a node keeps the cluster id it runs under on one Redis (`target`, as described in
 * logs): in its data dir, one file per Redis, so daemons started from one directory against
 * different servers (tests, a staging and a production cluster) never share an id.
 */
function clusterIdFile(dataDir: string, target: string): string {
  return join(dataDir, `cluster-id.${createHash('sha256').update(target).digest('hex').slice(0, 12)}`);
}

/** The cluster id this node last ran under on `target`, if it kept one. */
export function rememberedClusterId(dataDir: string, target: string): string | undefined {
  try {
    return readFileSync(clusterIdFile(dataDir, target), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Keeps the cluster id in the data dir: should Redis lose it while no daemon runs (emptied,
 * restarted without its append-only file), the next start puts the same id back instead of
 * a new one, which would orphan the containers labelled with the old one.
 */
export function rememberClusterId(dataDir: string, target: string, id: string): void {
  if (rememberedClusterId(dataDir, target) === id) return;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(clusterIdFile(dataDir, target), `${id}\n`);
}

export function newDaemonId(node: string): string {
  return `${node}-${process.pid}-${randomUUID().slice(0, 6)}`;
}

export interface Heartbeat {
  /**
   * Ends the heartbeat. With `keepUntil` (epoch ms), a graceful stop that leaves runs in
   * progress for the next start on this node: the heartbeat is kept, marked `leaving`, until
   * the last of their deadlines, so other nodes do not declare those runs lost (and retry
   * them beside their containers) while the successor adopts them; if none comes, they are
   * declared lost once it expires, when the containers are surely stopped.
   */
  stop(keepUntil?: number): Promise<void>;
}

/**
 * Keeps `runlet:daemon:<id>` alive while this process lives; it expires one lease after a crash.
 * On a connection of its own (a duplicate of `redis`, closed by `stop`): on the shared one a
 * beat queues behind whatever else that connection carries — record scripts, replica waits,
 * a burst of writes — and a daemon that is merely busy would look dead to the other nodes.
 * `live` is read at every beat (what the node runs now, ops/nodes.ts shows it), and each beat
 * also becomes the node's entry in the last-seen hash, in the same transaction, so a node
 * whose heartbeat expired is still known, as gone, with when it was last seen.
 */
export function startHeartbeat(
  shared: Redis,
  identity: Identity,
  info: Record<string, unknown>,
  live: () => Record<string, unknown> = () => ({}),
  leaseMs = DEFAULT_LEASE_MS,
): Heartbeat {
  const key = keys.daemon(identity.daemonId);
  const redis = shared.duplicate({ connectionName: 'runlet-heartbeat' });
  // Errors are the beat's own business: a failed beat is retried at the next one.
  redis.on('error', () => undefined);
  const startedAt = Date.now();
  const fixed = {
    ...info,
    node: identity.node,
    daemon: identity.daemonId,
    host: hostname(),
    pid: process.pid,
    boot: PROCESS_BOOT,
    startedAt,
  };
  let last = JSON.stringify({ ...fixed, at: startedAt });
  const beat = () => {
    let now: Record<string, unknown> = {};
    try {
      now = live();
    } catch {
      // A report that fails must not stop the beat that keeps this daemon alive.
    }
    last = JSON.stringify({ ...fixed, ...now, at: Date.now() });
    return redis
      .multi()
      .set(key, last, 'PX', leaseMs)
      .hset(keys.nodesSeen(), identity.node, last)
      .exec()
      .catch(() => undefined);
  };
  void beat();
  const timer = setInterval(beat, Math.floor(leaseMs / 3));
  timer.unref();
  return {
    stop: async (keepUntil) => {
      clearInterval(timer);
      const keepMs = keepUntil === undefined ? 0 : keepUntil - Date.now();
      try {
        if (keepMs > 0) {
          const leaving = JSON.stringify({ ...JSON.parse(last), leaving: true, leftAt: Date.now() });
          await redis.set(key, leaving, 'PX', Math.ceil(keepMs)).catch(() => undefined);
        } else await redis.del(key).catch(() => undefined);
      } finally {
        redis.disconnect();
      }
    },
  };
}

/**
 * A daemon is alive while its heartbeat has not expired. For a daemon of our own node
 * (`node`, same engine, so the same host in practice) we need not wait out the expiry: a
 * heartbeat whose process is gone belongs to a daemon that was killed or stopped, which
 * lets a restarted daemon settle its predecessor's containers at once. A daemon of another
 * node is judged by its heartbeat alone, even when its process happens to run on this
 * machine (tests, several engines on one host): a `leaving` heartbeat of a daemon that
 * stopped gracefully keeps its runs from being declared lost while its successor adopts them.
 *
 * With our own pid, the boot id decides: ours is a daemon of this very process; any other
 * (or none: a heartbeat older than boot ids) is a predecessor that had this pid before us,
 * and is dead, as two live processes on one host never share a pid. With another pid, that
 * process must still exist. (An unrelated process that took a dead daemon's pid makes it look
 * alive until its heartbeat expires, past start-up settling: left, as inside the image the
 * daemon is PID 1 and its own pid is the one that comes back.)
 */
export async function isDaemonAlive(redis: Redis, daemonId: string | undefined, node?: string): Promise<boolean> {
  if (!daemonId) return false;
  const raw = await redis.get(keys.daemon(daemonId));
  if (!raw) return false;
  const beat = JSON.parse(raw) as { host?: string; pid?: number; boot?: string; node?: string };
  if (beat.host !== hostname() || beat.pid === undefined || (node !== undefined && beat.node !== node)) return true;
  if (beat.pid === process.pid) return beat.boot === PROCESS_BOOT;
  return pidAlive(beat.pid);
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
