import type { RunletConfig, TaskConfig } from '../config/types.js';
import { formatBytes } from '../lib/format.js';

interface Reservation {
  readonly task: string;
  readonly pool: string;
  readonly memoryBytes: number;
  /** A warm instance (dispatch/warm-pool.ts): its memory counts, but it takes no run slot. */
  readonly warm?: boolean;
}

/** The reservation id of a warm instance: released when a run takes it (the run's own replaces it) or it is retired. */
export const warmReservation = (instanceId: string): string => `warm:${instanceId}`;

export interface PoolLoad {
  /** Runs of the pool on this node, against its per-node concurrency (null: a pool no longer configured). */
  runs: number;
  /** Idle warm instances of the pool's tasks here (their memory is in memoryBytes; they take no run slot). */
  warm: number;
  concurrency: number | null;
  /** Sum of those runs' memory limits, against the pool's per-node budget (null: none). */
  memoryBytes: number;
  budgetBytes: number | null;
}

/** A node's load as its admission sees it (NodeAdmission.load). */
export interface NodeLoad {
  readonly runs: ReadonlyArray<{ id: string; task: string; pool: string; memoryBytes: number }>;
  /** Idle warm instances per task, with the memory they hold (in memoryBytes too). */
  readonly warm: Readonly<Record<string, { instances: number; memoryBytes: number }>>;
  /** Sum of the runs' memory limits, against the node's budget (null: no budget). */
  readonly memoryBytes: number;
  readonly budgetBytes: number | null;
  readonly pools: Readonly<Record<string, PoolLoad>>;
}

/**
 * This node's room for runs: each pool's concurrency and memory budget, and the node's
 * memory budget (sums of the runs' memory *limits*: a limit is what a run may take, so it
 * is what must be free). Used as `whyNot(task)` to decide whether to fetch a task's jobs at
 * all, then `reserve(runId, task)` when one is taken — the second check catches two
 * workers that both saw the last free room.
 */
export class NodeAdmission {
  private readonly reserved = new Map<string, Reservation>();

  constructor(private readonly config: RunletConfig) {}

  /**
   * Why a run of `task` would not fit on this node now, or undefined if it would. Warm
   * instances' memory does not count against a run: runs come first, and the warm pool sheds
   * idle instances once a run is reserved (fitsAll, warm-pool.ts shed).
   */
  whyNot(task: TaskConfig): string | undefined {
    return this.why(task, task.memoryBytes, false);
  }

  private why(task: TaskConfig, needs: number, withWarm: boolean): string | undefined {
    const pool = this.config.pools[task.pool];
    let poolRuns = 0;
    let poolBytes = 0;
    let nodeBytes = 0;
    for (const r of this.reserved.values()) {
      if (r.warm && !withWarm) continue;
      nodeBytes += r.memoryBytes;
      if (r.pool === task.pool) {
        if (!r.warm) poolRuns++;
        poolBytes += r.memoryBytes;
      }
    }
    if (pool && poolRuns >= pool.concurrency) return `pool "${task.pool}" is at its concurrency of ${pool.concurrency} on this node`;
    if (pool?.memoryBytes !== undefined && poolBytes + needs > pool.memoryBytes) {
      return `pool "${task.pool}" has ${formatBytes(pool.memoryBytes - poolBytes)} of its ${formatBytes(pool.memoryBytes)} memory budget free on this node; the run needs ${formatBytes(needs)}`;
    }
    const node = this.config.node.memoryBytes;
    if (node !== undefined && nodeBytes + needs > node) {
      return `the node has ${formatBytes(node - nodeBytes)} of its ${formatBytes(node)} memory budget free; the run needs ${formatBytes(needs)}`;
    }
    return undefined;
  }

  /**
   * Reserves a warm instance's memory, only if the instance *and one run of its task* still
   * fit the pool's and the node's budgets with everything reserved (warm instances
   * included): warm instances never take the last room a run of their own task needs, and
   * never push a node past its budget (fewer instances are made).
   */
  reserveWarm(instanceId: string, task: TaskConfig): boolean {
    if (this.why(task, 2 * task.memoryBytes, true) !== undefined) return false;
    this.reserved.set(warmReservation(instanceId), { task: task.name, pool: task.pool, memoryBytes: task.memoryBytes, warm: true });
    return true;
  }

  /** Whether everything reserved here, warm instances included, is within the node's and every pool's memory budget. */
  fitsAll(): boolean {
    const byPool = new Map<string, number>();
    let node = 0;
    for (const r of this.reserved.values()) {
      node += r.memoryBytes;
      byPool.set(r.pool, (byPool.get(r.pool) ?? 0) + r.memoryBytes);
    }
    if (this.config.node.memoryBytes !== undefined && node > this.config.node.memoryBytes) return false;
    for (const [name, bytes] of byPool) {
      const budget = this.config.pools[name]?.memoryBytes;
      if (budget !== undefined && bytes > budget) return false;
    }
    return true;
  }

  reserve(runId: string, task: TaskConfig): boolean {
    if (this.reserved.has(runId)) return true;
    if (this.whyNot(task) !== undefined) return false;
    this.hold(runId, task);
    return true;
  }

  /**
   * Counts a run that already runs here, fit or not: a container adopted from a previous
   * process (dispatch/settle.ts) takes its room even if the budget shrank meanwhile, since
   * refusing it would not stop the container, only hide it from the budget.
   */
  hold(runId: string, task: TaskConfig): void {
    this.reserved.set(runId, { task: task.name, pool: task.pool, memoryBytes: task.memoryBytes });
  }

  release(runId: string): void {
    this.reserved.delete(runId);
  }

  /**
   * What this node holds now and against which budgets: each run (taken or adopted), the
   * memory limits they sum to, and each pool's slots. The heartbeat carries it, so the ops
   * API can show every node's load as that node's own admission sees it.
   */
  load(): NodeLoad {
    const pools: Record<string, PoolLoad> = {};
    for (const p of Object.values(this.config.pools))
      pools[p.name] = { runs: 0, warm: 0, concurrency: p.concurrency, memoryBytes: 0, budgetBytes: p.memoryBytes ?? null };
    const runs: Array<NodeLoad['runs'][number]> = [];
    const warm: Record<string, { instances: number; memoryBytes: number }> = {};
    for (const [id, r] of this.reserved) {
      if (r.warm) {
        const w = (warm[r.task] ??= { instances: 0, memoryBytes: 0 });
        w.instances++;
        w.memoryBytes += r.memoryBytes;
        const pool = (pools[r.pool] ??= { runs: 0, warm: 0, concurrency: null, memoryBytes: 0, budgetBytes: null });
        pool.warm++;
        pool.memoryBytes += r.memoryBytes;
        continue;
      }
      runs.push({ id, task: r.task, pool: r.pool, memoryBytes: r.memoryBytes });
      // A pool no longer in the config (an adopted run of an old one) still shows its runs.
      const pool = (pools[r.pool] ??= { runs: 0, warm: 0, concurrency: null, memoryBytes: 0, budgetBytes: null });
      pool.runs++;
      pool.memoryBytes += r.memoryBytes;
    }
    return { runs, warm, memoryBytes: this.reservedBytes(), budgetBytes: this.config.node.memoryBytes ?? null, pools };
  }

  /** Bytes of memory limits reserved on this node now. */
  reservedBytes(): number {
    let n = 0;
    for (const r of this.reserved.values()) n += r.memoryBytes;
    return n;
  }
}
