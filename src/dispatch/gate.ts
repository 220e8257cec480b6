import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RunletConfig, TaskConfig } from '../config/types.js';
import { registerScripts, ScriptCode } from '../redis/scripts.js';
import { gateKeys, keys } from '../runs/keys.js';
import { isTerminal, type RunStatus } from '../runs/types.js';
import type { QueueCounts } from './policies.js';

/** The runs holding a slot, per task that has any: one read per such task. */
export async function slotHolders(redis: Redis): Promise<Map<string, string[]>> {
  const tasks = await redis.smembers(gateKeys.slotted());
  const pipe = redis.pipeline();
  for (const t of tasks) pipe.zrange(gateKeys.slots(t), 0, -1);
  const res = tasks.length > 0 ? ((await pipe.exec()) ?? []) : [];
  return new Map(tasks.map((t, i) => [t, (res[i]?.[1] as string[] | undefined) ?? []]));
}

/**
 * A task's cluster-wide limit, kept in Redis beside the run queues rather than by them.
 *
 * Run queues are per pool (queues.ts), so a daemon holds a handful of queue connections
 * whatever the number of tasks. What a queue per task gave for free (BullMQ's global
 * concurrency) is done here: a run enters its pool's queue only once it holds one of its
 * task's slots (admitRun-4.lua); otherwise it is parked, with no queue job, until a slot is
 * freed (freeSlot-5.lua), oldest first. A slot is held from admission until the run is
 * terminal, its retries included.
 *
 * Freeing is driven by the ended-runs stream, which the same script that records a
 * terminal status writes (runs/ended.ts): every daemon sees every end and frees its slot;
 * the script admits the next run only for the call that removed the slot, so one end
 * admits at most once. Whatever a crash skips (no daemon was reading, or one died between
 * the free and the job add) is caught by the sweep every lease period and by the outbox.
 */
export class TaskGate {
  /** Lost runs whose container may run until their deadline: their slot is freed then, not before. */
  private readonly lostTimers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly redis: Redis,
    /** Read at each use (a LiveConfig view): a reload changes limits at the next admission. */
    private readonly config: RunletConfig,
    private readonly logger: Logger,
  ) {
    registerScripts(redis);
  }

  /** 0 = no limit: `overlap: allow` runs as many as the pools take. */
  private limitOf(task: TaskConfig | undefined): number {
    if (!task || task.overlap === 'allow') return 0;
    return task.concurrency;
  }

  /** True: the run holds a slot and its job may be added. False: it is parked until a slot is free. */
  async admit(taskName: string, runId: string, now = Date.now()): Promise<boolean> {
    const limit = this.limitOf(this.config.tasks[taskName]);
    const code = await this.redis.runletAdmitRun(
      gateKeys.slots(taskName),
      gateKeys.parked(taskName),
      gateKeys.slotted(),
      gateKeys.parkedTasks(),
      runId,
      limit,
      now,
      taskName,
    );
    return code === ScriptCode.Applied;
  }

  /**
   * Frees `runId`'s slot (or parked place) and returns the runs admitted in its stead; they
   * are in the outbox already, and the caller adds their jobs (enqueue.ts `admitted`).
   * An empty run id only admits, up to the task's limit now.
   */
  async free(taskName: string, runId: string, now = Date.now()): Promise<string[]> {
    return this.redis.runletFreeSlot(
      gateKeys.slots(taskName),
      gateKeys.parked(taskName),
      gateKeys.slotted(),
      gateKeys.parkedTasks(),
      keys.outbox(),
      runId,
      this.limitOf(this.config.tasks[taskName]),
      now,
      taskName,
    );
  }

  /**
   * A run ended (the ended-runs stream said so). A `lost` run's container may still run on a
   * frozen or cut-off node until the deadline its holder announced, so its slot is held until
   * then: the task's limit counts containers that may exist, not records.
   */
  async ended(taskName: string, runId: string, status: string, deadline: number | undefined, now = Date.now()): Promise<string[]> {
    if (status === 'lost' && deadline !== undefined && deadline > now) {
      if (!this.lostTimers.has(runId)) {
        const timer = setTimeout(() => {
          this.lostTimers.delete(runId);
          void this.onFreed(this.free(taskName, runId), taskName);
        }, deadline - now);
        timer.unref();
        this.lostTimers.set(runId, timer);
      }
      return [];
    }
    return this.free(taskName, runId, now);
  }

  /**
   * Counts a run that runs already without having been admitted (recorded again from its
   * container after Redis lost its record, orphans.ts): it takes its slot, fit or not, as
   * refusing it would not stop the container, only hide it from the limit and the scans.
   */
  async hold(taskName: string, runId: string, now = Date.now()): Promise<void> {
    await this.redis.multi().zadd(gateKeys.slots(taskName), now, runId).sadd(gateKeys.slotted(), taskName).exec();
  }

  /** Told of the runs each free admitted, so their jobs are added (set by the daemon). */
  onAdmitted: (taskName: string, runIds: string[]) => Promise<void> = async () => undefined;

  private async onFreed(freeing: Promise<string[]>, taskName: string): Promise<void> {
    try {
      const admitted = await freeing;
      if (admitted.length > 0) await this.onAdmitted(taskName, admitted);
    } catch (err) {
      this.logger.warn({ err }, 'could not free a task slot; the sweep frees it');
    }
  }

  /**
   * The sweep, every lease period on every daemon: slots held by runs that are terminal (a
   * free no daemon made: all were down, or the one that read the end died) or gone, and
   * parked runs a raised limit now admits. Reads only the tasks that hold slots or park runs,
   * so its cost follows the runs in progress, not the tasks declared.
   */
  async sweep(now = Date.now()): Promise<number> {
    const [slotted, parked] = await Promise.all([this.redis.smembers(gateKeys.slotted()), this.redis.smembers(gateKeys.parkedTasks())]);
    let freed = 0;
    for (const taskName of new Set([...slotted, ...parked])) {
      const ids = [
        ...(await this.redis.zrange(gateKeys.slots(taskName), 0, -1)),
        ...(await this.redis.zrange(gateKeys.parked(taskName), 0, -1)),
      ];
      // Two fields of each, not the records: payloads and logs stay where they are.
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hmget(keys.run(id), 'status', 'deadline');
      const res = (await pipe.exec()) ?? [];
      let admitted: string[] = [];
      for (const [i, runId] of ids.entries()) {
        const [status, deadline] = (res[i]?.[1] as [string | null, string | null] | undefined) ?? [null, null];
        const done = status === null || isTerminal(status as RunStatus);
        // A lost run's slot waits for its deadline (see `ended`).
        if (!done || (status === 'lost' && deadline !== null && Number(deadline) > now)) continue;
        admitted = admitted.concat(await this.free(taskName, runId, now));
        freed++;
      }
      // A raised limit admits parked runs though nothing ended.
      admitted = admitted.concat(await this.free(taskName, '', now));
      if (admitted.length > 0) await this.onAdmitted(taskName, admitted);
    }
    return freed;
  }

  /**
   * What overlap policies decide by (policies.ts), cluster-wide: `active`, the task's runs
   * holding a slot that have started or wait between attempts; `waiting`, its runs waiting
   * to start: parked, or admitted and waiting for a node (a queued slot holder with no
   * retry pending). Reads the slot holders' statuses: at most `concurrency` of them.
   */
  async counts(taskName: string, now = Date.now()): Promise<QueueCounts> {
    const { holders, parked } = await this.holders(taskName);
    if (holders.length === 0) return { active: 0, waiting: parked };
    const pipe = this.redis.pipeline();
    for (const id of holders) pipe.hmget(keys.run(id), 'status', 'retryAt');
    const states = (await pipe.exec()) ?? [];
    let toStart = 0;
    for (const [, v] of states) {
      const [status, retryAt] = (v as [string | null, string | null] | null) ?? [null, null];
      if (status === 'queued' && (retryAt === null || Number(retryAt) <= now)) toStart++;
    }
    return { active: holders.length - toStart, waiting: parked + toStart };
  }

  /**
   * Bounds of counts() from one round trip, without reading any run: each slot holder may be
   * active or waiting, so `active` ≤ holders and `waiting` ≤ parked + holders. An overlap
   * policy that passes on these passes on the exact counts (policies.ts), which spares a
   * function's every request reading `concurrency` run records.
   */
  async upperCounts(taskName: string): Promise<QueueCounts> {
    const { holders, parked } = await this.holders(taskName);
    return { active: holders.length, waiting: parked + holders.length };
  }

  private async holders(taskName: string): Promise<{ holders: string[]; parked: number }> {
    const res = await this.redis.multi().zrange(gateKeys.slots(taskName), 0, -1).zcard(gateKeys.parked(taskName)).exec();
    return { holders: (res?.[0]?.[1] as string[] | undefined) ?? [], parked: Number(res?.[1]?.[1] ?? 0) };
  }

  /**
   * Per task with runs in progress or parked: how many are starting or running, and how
   * many wait (parked, or holding a slot while queued: in the pool's queue, or between
   * attempts). For the cluster-wide gauges; reads the statuses of the runs in progress only.
   */
  async states(): Promise<Map<string, { active: number; waiting: number }>> {
    const [holders, parked] = await Promise.all([slotHolders(this.redis), this.parkedCounts()]);
    const pipe = this.redis.pipeline();
    const order: Array<[string, string]> = [];
    for (const [t, ids] of holders) for (const id of ids) (order.push([t, id]), pipe.hget(keys.run(id), 'status'));
    const res = order.length > 0 ? ((await pipe.exec()) ?? []) : [];
    const out = new Map<string, { active: number; waiting: number }>();
    for (const [t, n] of parked) out.set(t, { active: 0, waiting: n });
    order.forEach(([t], i) => {
      const s = out.get(t) ?? { active: 0, waiting: 0 };
      const status = res[i]?.[1] as string | null | undefined;
      if (status === 'starting' || status === 'running') s.active++;
      else if (status === 'queued') s.waiting++;
      out.set(t, s);
    });
    return out;
  }

  /** Parked runs per task, for the tasks that have any. */
  private async parkedCounts(): Promise<Map<string, number>> {
    const tasks = await this.redis.smembers(gateKeys.parkedTasks());
    const pipe = this.redis.pipeline();
    for (const t of tasks) pipe.zcard(gateKeys.parked(t));
    const res = tasks.length > 0 ? ((await pipe.exec()) ?? []) : [];
    return new Map(tasks.map((t, i) => [t, Number(res[i]?.[1] ?? 0)]));
  }

  /** Forgets the lost runs' timers (their slots are freed by the sweep of whichever daemon lives). */
  close(): void {
    for (const t of this.lostTimers.values()) clearTimeout(t);
    this.lostTimers.clear();
  }
}
