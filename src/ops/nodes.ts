import type { Redis } from 'ioredis';
import type { NodeLoad } from '../dispatch/admission.js';
import type { ReuseCounts } from '../dispatch/reuse-pools.js';
import { liveDaemons } from '../dispatch/identity.js';
import { keys } from '../runs/keys.js';

/**
 * How long a node that stopped beating stays listed as gone. Long enough that a person
 * looking the next morning still sees which node went away and what it was running; after
 * that it is history, and a cluster whose node names change (autoscaled hosts) would
 * otherwise list every host it ever had.
 */
export const GONE_NODE_RETENTION_MS = 24 * 3600_000;

/** One heartbeat as dispatch/identity.ts writes it (older daemons leave out `at`, `daemon` and `load`). */
interface Beat {
  id?: string;
  daemon?: string;
  node?: string;
  host?: string;
  pid?: number;
  version?: string;
  startedAt?: number;
  at?: number;
  load?: NodeLoad;
  /** Reusable instances per task (daemons with a `reuse: true` task; older ones leave it out). */
  reuse?: ReuseCounts;
}

export interface NodeView {
  readonly name: string;
  /** live: a daemon of this node has an unexpired heartbeat; gone: none has, but one was seen within the retention. */
  readonly state: 'live' | 'gone';
  /** The latest heartbeat of the node's daemons (ISO), and how long ago that was. */
  readonly lastHeartbeatAt: string;
  readonly sinceMs: number;
  /** A gone node is dropped from the list at this time (ISO); null while live. */
  readonly forgetAt: string | null;
  readonly daemons: ReadonlyArray<{
    id: string;
    host: string | null;
    pid: number | null;
    version: string | null;
    startedAt: string | null;
  }>;
  /**
   * What the node's admission held at that heartbeat (for a gone node: when last seen):
   * runs taken or adopted, the memory limits they sum to against the node's budget, and
   * each pool's slots. Null when the daemon is too old to report it.
   */
  readonly running: { count: number; runs: ReadonlyArray<{ id: string; task: string; pool: string; memoryBytes: number }> } | null;
  readonly memory: { inUseBytes: number; budgetBytes: number | null } | null;
  /** Idle warm instances per task on the node (their memory is in memory.inUseBytes), from the same heartbeat. */
  readonly warm: Readonly<Record<string, { instances: number; memoryBytes: number }>>;
  /**
   * Reusable instances (`reuse: true`) per task on the node: alive, and of them idle
   * (waiting for an invocation) and busy (serving one); the rest are starting. A busy one's
   * memory is its run's, in memory.inUseBytes; an idle one holds no reservation.
   */
  readonly reuse: ReuseCounts;
  readonly pools: ReadonlyArray<{
    name: string;
    runs: number;
    concurrency: number | null;
    memoryBytes: number;
    budgetBytes: number | null;
  }>;
}

const beatTime = (b: Beat): number => b.at ?? b.startedAt ?? 0;
const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/**
 * Every node of the cluster: the live ones from their daemons' heartbeat keys, the gone ones
 * from the last-seen hash (each heartbeat writes its node's entry; the key expires, the
 * entry stays). Gone entries past the retention are deleted here, by whoever reads.
 * `live` may be passed when the caller already scanned the heartbeats (ops/status.ts).
 */
export async function clusterNodes(redis: Redis, now = Date.now(), live?: Record<string, unknown>[]): Promise<NodeView[]> {
  const [beats, seen] = await Promise.all([live ?? liveDaemons(redis), redis.hgetall(keys.nodesSeen())]);
  const byNode = new Map<string, Beat[]>();
  for (const b of beats as Beat[]) {
    if (!b.node) continue;
    byNode.set(b.node, [...(byNode.get(b.node) ?? []), b]);
  }
  // Normally one daemon a node; during a rolling restart the old one may still be finishing
  // its runs beside the new one, so their loads add up (each has its own admission).
  const nodes: NodeView[] = [...byNode].map(([name, daemons]) => ({ ...view(name, daemons, now), state: 'live', forgetAt: null }));

  const gone: NodeView[] = [];
  const forget: string[] = [];
  for (const [name, raw] of Object.entries(seen)) {
    if (byNode.has(name)) continue;
    let beat: Beat;
    try {
      beat = JSON.parse(raw) as Beat;
    } catch {
      forget.push(name);
      continue;
    }
    const at = beatTime(beat);
    if (now - at > GONE_NODE_RETENTION_MS) forget.push(name);
    else gone.push({ ...view(name, [beat], now), state: 'gone', forgetAt: iso(at + GONE_NODE_RETENTION_MS) });
  }
  // A node coming back between the read and this delete loses its entry until its next beat
  // (seconds); it is live meanwhile, which is read from its heartbeat key, not from here.
  if (forget.length > 0) await redis.hdel(keys.nodesSeen(), ...forget);
  nodes.sort((a, b) => a.name.localeCompare(b.name));
  gone.sort((a, b) => Date.parse(b.lastHeartbeatAt) - Date.parse(a.lastHeartbeatAt));
  return [...nodes, ...gone];
}

function view(name: string, beats: Beat[], now: number): Omit<NodeView, 'state' | 'forgetAt'> {
  const latest = beats.reduce((a, b) => (beatTime(b) > beatTime(a) ? b : a));
  const at = beatTime(latest);
  const loads = beats.map((b) => b.load).filter((l): l is NodeLoad => l !== undefined);
  const pools = new Map<string, NodeView['pools'][number]>();
  for (const l of loads)
    for (const [pool, p] of Object.entries(l.pools)) {
      const sum = pools.get(pool);
      pools.set(pool, {
        name: pool,
        runs: (sum?.runs ?? 0) + p.runs,
        concurrency: sum?.concurrency ?? p.concurrency,
        memoryBytes: (sum?.memoryBytes ?? 0) + p.memoryBytes,
        budgetBytes: sum?.budgetBytes ?? p.budgetBytes,
      });
    }
  const runs = loads.flatMap((l) => l.runs);
  const warm: Record<string, { instances: number; memoryBytes: number }> = {};
  for (const l of loads)
    for (const [task, w] of Object.entries(l.warm ?? {})) {
      const sum = (warm[task] ??= { instances: 0, memoryBytes: 0 });
      sum.instances += w.instances;
      sum.memoryBytes += w.memoryBytes;
    }
  const reuse: ReuseCounts = {};
  for (const b of beats)
    for (const [task, r] of Object.entries(b.reuse ?? {})) {
      const sum = (reuse[task] ??= { instances: 0, idle: 0, busy: 0 });
      sum.instances += r.instances;
      sum.idle += r.idle;
      sum.busy += r.busy;
    }
  return {
    name,
    lastHeartbeatAt: new Date(at).toISOString(),
    sinceMs: Math.max(0, now - at),
    daemons: beats.map((b) => ({
      id: b.id ?? b.daemon ?? '',
      host: b.host ?? null,
      pid: b.pid ?? null,
      version: b.version ?? null,
      startedAt: iso(b.startedAt),
    })),
    running: loads.length ? { count: runs.length, runs } : null,
    memory: loads.length
      ? { inUseBytes: loads.reduce((n, l) => n + l.memoryBytes, 0), budgetBytes: (latest.load ?? loads[0]).budgetBytes }
      : null,
    warm,
    reuse,
    pools: [...pools.values()].sort((a, b) => a.name.localeCompare(b.name)),
  };
}
