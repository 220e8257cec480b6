import type { Redis } from 'ioredis';
import { monotonicFactory } from 'ulid';
import type { ReplicaAnswer } from '../lib/replicas.js';
import { registerScripts, ScriptCode } from '../redis/scripts.js';
import { CHANGES_CHANNEL, gateKeys, keys } from './keys.js';
import {
  MOVES,
  TERMINAL_STATUSES,
  type AttemptRecord,
  type RunRecord,
  type RunRequest,
  type RunStatus,
  type Transition,
  type TriggerKind,
  type Usage,
} from './types.js';

/** How long a dedupe key keeps answering with its run unless the request says otherwise: longer than any redelivery window. */
export const DEDUPE_TTL_MS = 7 * 24 * 3600 * 1000;
/** The log tail kept per run (bytes), as the runtime keeps it. */
export const LOG_TAIL_BYTES = 64 * 1024;
/**
 * The ended-runs stream keeps about this many entries (XADD MAXLEN ~, in the scripts that
 * write a terminal status): its readers are expected to keep up within ~10k ended runs.
 */
export const ENDED_STREAM_MAXLEN = 10000;

type Fields = Partial<
  Pick<
    RunRecord,
    | 'startedAt'
    | 'finishedAt'
    | 'node'
    | 'daemon'
    | 'containerId'
    | 'image'
    | 'exitCode'
    | 'reason'
    | 'usage'
    | 'memoryBytes'
    | 'attempt'
    | 'retryAt'
    | 'dead'
    | 'deadline'
    | 'job'
    | 'claim'
    | 'maxAttempts'
  >
>;

/** ULIDs: sortable by creation time, unique across daemons without coordination. */
export const newRunId: () => string = monotonicFactory();

/**
 * What a reader of runs may call. Triggers, HTTP and alerts read records and never write
 * them: every write goes through dispatch, where the exactly-once argument lives.
 */
export type RunReader = Pick<RunStore, 'get' | 'getMany' | 'list' | 'last' | 'logSnapshot'>;

/**
 * Run records in Redis. A record is a hash (scalar fields), a list of transitions, and a
 * log tail, indexed by two sorted sets (all runs, runs per task). Writes that must not
 * race go through the Lua scripts in src/redis/lua/.
 */
/** The statuses of a run in progress: every such run holds a task slot or waits parked (dispatch/gate.ts). */
const IN_PROGRESS: readonly RunStatus[] = ['queued', 'starting', 'running'];

export class RunStore {
  constructor(
    private readonly redis: Redis,
    private readonly opts: RunStoreOptions = {},
  ) {
    registerScripts(redis);
  }

  /**
   * A write someone acts on next — a run acknowledged to its requester, a claim before its
   * container starts, a status change, an attempt's end — made to stick across a failover:
   * with replicas to ask (Sentinel), it returns once a replica holds it. Replication is
   * asynchronous, so a master that dies right after applying a write may take it along;
   * without this, a lost claim starts the run a second time and a lost creation leaves an
   * acknowledged run that does not exist. When the answer is that the master changed while
   * asking, the write is made again (`again`): every write here is idempotent for its
   * writer (the dedupe key, the claim token, the status and attempt guards), so a repeat of
   * one that did survive changes nothing. A replica that does not answer in time is logged,
   * and the write stands as it is (availability over a wait for nobody).
   */
  private async replicated<T>(first: T, applied: boolean, again: () => Promise<T>): Promise<T> {
    const replicas = this.opts.replicas;
    if (!replicas || !applied) return first;
    let result = first;
    for (let i = 0; i < 3 && (await replicas.ask()) === 'unknown'; i++) result = await again();
    return result;
  }

  /**
   * Creates the run for `request` unless its dedupe key already has one. Atomic: two
   * daemons handling the same event get the same run id, and only one gets created=true.
   * A queued run is also put in the outbox until its queue job is confirmed.
   */
  async create(
    request: RunRequest,
    opts: { runId?: string; status?: 'queued' | 'skipped'; reason?: string; cronMarker?: boolean; now?: number; maxAttempts?: number } = {},
  ): Promise<{ runId: string; created: boolean }> {
    const runId = opts.runId ?? newRunId();
    const now = opts.now ?? Date.now();
    const status = opts.status ?? 'queued';
    const transition: Transition = { status, at: now, ...(opts.reason ? { reason: opts.reason } : {}) };
    const fields = flatten({
      task: request.task,
      trigger: request.trigger,
      dedupeKey: request.dedupeKey,
      scheduledAt: request.scheduledAt,
      backfill: request.backfill ? 'true' : undefined,
      missedTicks: request.missedTicks,
      reason: opts.reason,
      retryOf: request.retryOf,
      contentType: request.contentType,
      headers: request.headers,
      cause: request.cause,
      ...(status === 'skipped' ? { finishedAt: now } : {}),
      ...(status === 'queued' && opts.maxAttempts !== undefined ? { attempt: 1, maxAttempts: opts.maxAttempts } : {}),
    });
    const write = () =>
      this.redis.runletCreateRun(
        keys.dedupe(request.dedupeKey),
        keys.run(runId),
        keys.transitions(runId),
        keys.allRuns(),
        keys.taskRuns(request.task),
        keys.outbox(),
        keys.ended(),
        // Always passed; the script moves it only when the tick below is given.
        keys.cronLast(request.task),
        keys.payload(runId),
        runId,
        String(now),
        // The key's own lifetime (SET PX in the script): the claim expires with it, so the
        // same event after a request's window is a new run, never before.
        String(request.dedupeTtlMs ?? DEDUPE_TTL_MS),
        JSON.stringify(transition),
        status,
        request.scheduledAt !== undefined && opts.cronMarker ? String(request.scheduledAt) : '',
        request.task,
        String(ENDED_STREAM_MAXLEN),
        CHANGES_CHANNEL,
        request.payload === undefined ? '' : JSON.stringify(request.payload),
        ...fields,
      );
    const [id, code] = await write();
    const created = code === ScriptCode.Applied;
    // Written again only if lost: then it is ours again, or, if another writer's request for
    // the same key landed first on the new master, theirs (created false: we queue nothing).
    const [finalId, finalCode] = await this.replicated([id, code] as const, created, async () => {
      const [againId, againCode] = await write();
      return againId === id ? ([id, code] as const) : ([againId, againCode] as const);
    });
    return { runId: finalId, created: finalCode === ScriptCode.Applied };
  }

  /**
   * Records again a run in progress whose record Redis lost (emptied, or failed over before
   * the record reached the replica), from its container's labels: status `starting` or
   * `running`, at `fields.attempt`. Only when the run has no record at all (recordAgain-4.lua);
   * false when it has one. Its end is then recorded as any attempt's, by `endAttempt`.
   */
  async recordAgain(
    runId: string,
    opts: {
      task: string;
      trigger: TriggerKind;
      dedupeKey: string;
      status: 'starting' | 'running';
      createdAt: number;
      reason: string;
      cause?: string;
      fields: Fields;
      now?: number;
    },
  ): Promise<boolean> {
    const now = opts.now ?? Date.now();
    const transition: Transition = { status: opts.status, at: now, reason: opts.reason };
    const code = await this.redis.runletRecordAgain(
      keys.run(runId),
      keys.transitions(runId),
      keys.allRuns(),
      keys.taskRuns(opts.task),
      runId,
      opts.task,
      opts.status,
      String(opts.createdAt),
      JSON.stringify(transition),
      CHANGES_CHANNEL,
      ...flatten({ ...opts.fields, trigger: opts.trigger, dedupeKey: opts.dedupeKey, cause: opts.cause, reason: opts.reason }),
    );
    return code === ScriptCode.Applied;
  }

  /** Whether the run has a record. */
  async exists(runId: string): Promise<boolean> {
    return (await this.redis.exists(keys.run(runId))) === 1;
  }

  /**
   * Moves a run to `status` if its current status is in `from` ('*': any non-terminal).
   * Returns false when refused, so a late or duplicate writer (a redelivered job, a
   * settling daemon) can never overwrite an outcome that is already recorded.
   */
  async transition(
    runId: string,
    status: RunStatus,
    opts: { from: readonly RunStatus[] | '*'; reason?: string; fields?: Fields; now?: number },
  ): Promise<boolean> {
    const [head, fields] = guardedChange(status, opts);
    const write = async () =>
      (await this.redis.runletTransition(keys.run(runId), keys.transitions(runId), keys.ended(), ...head, ...fields)) ===
      ScriptCode.Applied;
    const applied = await write();
    // Applied once is applied: a repeat that is refused means the first one survived.
    return this.replicated(applied, applied, async () => (await write()) || applied);
  }

  /**
   * The claim of a queued run's `attempt` for one claimant (`token`, unique per claiming
   * call): moves it to `starting`, refused unless it is queued at that attempt. Idempotent
   * for the same token while the run is `starting`: when the connection drops after the
   * script ran and ioredis resends it, the resend answers true, so the winner goes on
   * rather than leave the run `starting` with nobody to start it. A token per call, not per
   * daemon, so two deliveries of one job in one daemon still make one winner.
   */
  async claim(runId: string, opts: { attempt: number; token: string; fields?: Fields; now?: number }): Promise<boolean> {
    const [head, fields] = guardedChange(MOVES.start.to, { from: MOVES.start.from, fields: opts.fields, now: opts.now });
    const write = async () =>
      (await this.redis.runletClaimRun(
        keys.run(runId),
        keys.transitions(runId),
        keys.ended(),
        ...head,
        String(opts.attempt),
        opts.token,
        ...fields,
      )) === ScriptCode.Applied;
    const claimed = await write();
    // Before the container starts. Asked again with the same token, the claim is true if it
    // survived or is made now, and false only if another claimant won meanwhile: then this
    // one must not start a container.
    return this.replicated(claimed, claimed, write);
  }

  /**
   * A status change by the holder of the run's attempt (`starting` → `running`): refused
   * unless `attempt` is still current and `claim` is still the holder's (fencedTransition-3.lua),
   * so a worker deposed while it created its container learns it before the run says so.
   */
  async fencedTransition(
    runId: string,
    status: RunStatus,
    opts: { from: readonly RunStatus[]; attempt: number; claim: string; reason?: string; fields?: Fields; now?: number },
  ): Promise<boolean> {
    const [head, fields] = guardedChange(status, opts);
    const write = async () =>
      (await this.redis.runletFencedTransition(
        keys.run(runId),
        keys.transitions(runId),
        keys.ended(),
        ...head,
        String(opts.attempt),
        opts.claim,
        ...fields,
      )) === ScriptCode.Applied;
    const applied = await write();
    // Before the container is trusted to run: made again (same claim) if the master changed.
    return this.replicated(applied, applied, async () => (await write()) || applied);
  }

  /**
   * The claim and attempt of each run, read in one round trip (the holder's claim watch,
   * dispatch/claims.ts); undefined for a run that has no record.
   */
  async claims(runIds: readonly string[]): Promise<Array<{ claim?: string; attempt: number } | undefined>> {
    if (runIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of runIds) pipeline.hmget(keys.run(id), 'status', 'claim', 'attempt');
    return ((await pipeline.exec()) ?? []).map(([err, value]) => {
      if (err) throw err;
      const [status, claim, attempt] = value as Array<string | null>;
      return status === null ? undefined : { claim: claim ?? undefined, attempt: Number(attempt ?? '1') };
    });
  }

  /**
   * Adoption (adoptRun-1.lua): takes the claim on the run's `attempt` over from the holder
   * whose claim `expected` this daemon read (and judged dead), if it is still that holder's
   * and the attempt still in progress. Of two adopters, or an adopter and a daemon declaring
   * the attempt lost, one wins.
   */
  async adopt(runId: string, opts: { attempt: number; expected: string | undefined; claim: string; daemon: string }): Promise<boolean> {
    const write = async () =>
      (await this.redis.runletAdoptRun(
        keys.run(runId),
        String(opts.attempt),
        opts.expected ?? '',
        opts.claim,
        opts.daemon,
        MOVES.endAttempt.from.join(','),
      )) === ScriptCode.Applied;
    const adopted = await write();
    // Asked again after a failover: refused then only because this adoption already holds.
    return this.replicated(adopted, adopted, async () => (await write()) || adopted);
  }

  /**
   * Ends the run's current attempt: the same guard as `transition`, and refused unless
   * `attempt` is still the run's current one (and, given `claim`, its claim still the
   * writer's: a holder deposed by an adopter or a daemon that judged it dead writes nothing),
   * so an attempt is ended once and a late one
   * (its daemon frozen or cut off while the run was retried) writes nothing. Appends `entry`
   * to the run's attempts; `clear` deletes fields that belonged to the attempt; `left` (the
   * attempt's log tail and output) replaces the run's in the same script, behind the same
   * fence. Moving to `queued` (a retry) puts the run back in the outbox until `confirmQueued`.
   */
  async endAttempt(
    runId: string,
    status: RunStatus,
    opts: {
      from: readonly RunStatus[] | '*';
      attempt: number;
      claim?: string;
      entry: AttemptRecord;
      reason?: string;
      fields?: Fields;
      clear?: readonly (keyof Fields)[];
      left?: AttemptLeft;
      now?: number;
    },
  ): Promise<boolean> {
    const [head, fields] = guardedChange(status, opts);
    const left = opts.left && { ...opts.left, logTail: keptTail(opts.left.logTail) };
    const write = () =>
      this.redis.runletEndAttempt(
        keys.run(runId),
        keys.transitions(runId),
        keys.attempts(runId),
        keys.outbox(),
        keys.ended(),
        keys.logs(runId),
        keys.output(runId),
        ...head,
        String(opts.attempt),
        opts.claim ?? '',
        JSON.stringify(opts.entry),
        (opts.clear ?? []).join(','),
        left ? JSON.stringify(left) : '',
        ...fields,
      );
    const applied = (await write()) === ScriptCode.Applied;
    return this.replicated(applied, applied, async () => (await write()) === ScriptCode.Applied || applied);
  }

  /**
   * Records why a node refused to take the run, for "why does it wait". Written only while
   * the run is queued (setWaitReason-1.lua, so a run that has started meanwhile is not
   * marked, and a deleted one is not re-created).
   */
  async setWaitReason(runId: string, reason: string, node: string, at = Date.now()): Promise<void> {
    await this.redis.runletSetWaitReason(keys.run(runId), reason, String(at), node);
  }

  /**
   * `end`: the attempt the tail belongs to and the byte offset in that attempt's output where
   * it ends, written in the same script as the tail, so a live follower can join the tail to
   * the chunks published after it (runs/log-stream.ts). With it the write is fenced by the
   * attempt (writeLogTail-2.lua): false when the run has moved to another attempt, so a late
   * attempt never overwrites the current one's tail. Without it (tools and tests, no attempt
   * running) the tail is written as is and its position cleared. An attempt's final tail is
   * written by `endAttempt`, with its status.
   */
  async setLogTail(runId: string, tail: string, end?: { attempt: number; bytes: number; claim?: string }): Promise<boolean> {
    if (end) {
      const code = await this.redis.runletWriteLogTail(
        keys.run(runId),
        keys.logs(runId),
        String(end.attempt),
        keptTail(tail),
        String(end.bytes),
        end.claim ?? '',
      );
      return code === ScriptCode.Applied;
    }
    await this.redis.multi().set(keys.logs(runId), keptTail(tail)).hdel(keys.run(runId), 'logAttempt', 'logBytes').exec();
    return true;
  }

  /** The stored tail, where it ends (see setLogTail), and the run's status, read together. */
  async logSnapshot(runId: string): Promise<{ text: string; attempt?: number; end?: number; status?: RunStatus } | undefined> {
    const res = await this.redis.multi().get(keys.logs(runId)).hmget(keys.run(runId), 'status', 'logAttempt', 'logBytes').exec();
    const text = (res?.[0]?.[1] as string | null) ?? '';
    const [status, attempt, bytes] = (res?.[1]?.[1] as (string | null)[] | undefined) ?? [];
    if (!status) return undefined;
    return {
      text,
      status: status as RunStatus,
      ...(attempt ? { attempt: Number(attempt) } : {}),
      ...(bytes ? { end: Number(bytes) } : {}),
    };
  }

  /**
   * Kept apart from the record's hash, like the log tail, so listings never load it. Not
   * fenced: for tools and tests; an attempt's output is written by `endAttempt`, fenced.
   */
  async setOutput(runId: string, text: string | undefined, error: string | undefined): Promise<void> {
    const fields = [...(text !== undefined ? ['text', text] : []), ...(error !== undefined ? ['error', error] : [])];
    await this.redis.del(keys.output(runId));
    if (fields.length > 0) await this.redis.hset(keys.output(runId), ...fields);
  }

  async getLogTail(runId: string): Promise<string | undefined> {
    return (await this.redis.get(keys.logs(runId))) ?? undefined;
  }

  /** The job for this run is in its queue: it no longer needs the outbox's safety net. */
  async confirmQueued(runId: string): Promise<void> {
    await this.redis.zrem(keys.outbox(), runId);
  }

  /**
   * Keeps a run in the outbox but looks at it again only after `at` (epoch ms): a run parked
   * by its task's gate has no job yet, and stays recoverable should its parked entry be lost
   * (a failover), without being looked at on every pass.
   */
  async recheckLater(runId: string, at: number): Promise<void> {
    await this.redis.zadd(keys.outbox(), at, runId);
  }

  /** Runs recorded at least `olderThanMs` ago whose queue job was never confirmed. */
  async unconfirmed(olderThanMs: number, now = Date.now()): Promise<string[]> {
    return this.redis.zrangebyscore(keys.outbox(), 0, now - olderThanMs);
  }

  async get(runId: string, opts: ReadOptions = {}): Promise<RunRecord | undefined> {
    const [records] = await this.getMany([runId], opts);
    return records;
  }

  /** The run's payload alone (undefined: none, or no such run): what its container is given. */
  async payload(runId: string): Promise<unknown> {
    const [kept, old] = await this.redis
      .multi()
      .get(keys.payload(runId))
      .hget(keys.run(runId), 'payload')
      .exec()
      .then((r) => (r ?? []).map(([, v]) => v as string | null));
    const text = kept ?? old;
    return text === null || text === undefined ? undefined : (JSON.parse(text) as unknown);
  }

  /**
   * The records of `runIds` in one round trip. The log tail and output (`withLogs`) and the
   * payload (`withPayload`) are separate keys, read only when asked for: a listing of
   * thousands of runs must not load megabytes of each.
   */
  async getMany(runIds: readonly string[], opts: ReadOptions = {}): Promise<(RunRecord | undefined)[]> {
    if (runIds.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of runIds) {
      pipe.hgetall(keys.run(id));
      pipe.lrange(keys.transitions(id), 0, -1);
      pipe.lrange(keys.attempts(id), 0, -1);
      if (opts.withLogs) pipe.get(keys.logs(id));
      if (opts.withLogs) pipe.hgetall(keys.output(id));
      if (opts.withPayload) pipe.get(keys.payload(id));
    }
    const res = (await pipe.exec()) ?? [];
    const step = 3 + (opts.withLogs ? 2 : 0) + (opts.withPayload ? 1 : 0);
    return runIds.map((_, i) => {
      const at = (n: number) => res[i * step + n]?.[1];
      const hash = at(0) as Record<string, string> | undefined;
      if (!hash || !hash.id) return undefined;
      const transitions = (at(1) as string[]).map((s) => JSON.parse(s) as Transition);
      const attempts = ((at(2) as string[] | undefined) ?? []).map((s) => JSON.parse(s) as AttemptRecord);
      const logTail = opts.withLogs ? ((at(3) as string | null) ?? undefined) : undefined;
      const output = opts.withLogs ? ((at(4) as Record<string, string> | undefined) ?? {}) : {};
      // A record written before payloads moved out of the hash keeps its own there.
      const payload = opts.withPayload ? ((at(opts.withLogs ? 5 : 3) as string | null) ?? hash.payload) : undefined;
      const record = toRecord(hash, transitions, attempts, logTail);
      return {
        ...record,
        ...(payload !== undefined && { payload: JSON.parse(payload) as unknown }),
        ...(output.text !== undefined && { output: output.text }),
        ...(output.error !== undefined && { outputError: output.error }),
      };
    });
  }

  /**
   * Newest first. Filters by status in memory over at most `scan` recent ids: listings are
   * for people and dashboards, and retention bounds each task's runs anyway.
   */
  async list(
    opts: { task?: string; status?: readonly RunStatus[]; trigger?: TriggerKind; dead?: boolean; limit?: number; before?: string } = {},
  ): Promise<RunRecord[]> {
    const limit = Math.max(1, Math.min(opts.limit ?? 50, 1000));
    if (opts.status?.length && opts.status.every((s) => IN_PROGRESS.includes(s)) && !opts.before) {
      return this.listInProgress(opts.status, opts, limit);
    }
    const index = opts.task ? keys.taskRuns(opts.task) : keys.allRuns();
    const filtered = Boolean(opts.status?.length || opts.trigger || opts.dead !== undefined);
    const scan = filtered ? 5000 : limit + 1;
    const max = opts.before ? `(${(await this.redis.zscore(index, opts.before)) ?? '+inf'}` : '+inf';
    const ids = await this.redis.zrevrangebyscore(index, max, '-inf', 'LIMIT', 0, scan);
    const out: RunRecord[] = [];
    for (let i = 0; i < ids.length && out.length < limit; i += 200) {
      const batch = await this.getMany(ids.slice(i, i + 200));
      for (const r of batch) {
        if (!r) continue;
        if (opts.status?.length && !opts.status.includes(r.status)) continue;
        if (opts.trigger && r.trigger !== opts.trigger) continue;
        if (opts.dead !== undefined && Boolean(r.dead) !== opts.dead) continue;
        out.push(r);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /**
   * Runs in progress, newest first, read from the task gate's index (dispatch/gate.ts: every
   * run from admission to its end holds a slot or waits parked) rather than by scanning the
   * history: the reconciler, the stuck scan and the status page ask this every few seconds,
   * and their cost then follows the runs in progress, not the runs kept.
   */
  private async listInProgress(
    statuses: readonly RunStatus[],
    opts: { task?: string; trigger?: TriggerKind; dead?: boolean },
    limit: number,
  ): Promise<RunRecord[]> {
    const tasks = opts.task
      ? [opts.task]
      : [...new Set([...(await this.redis.smembers(gateKeys.slotted())), ...(await this.redis.smembers(gateKeys.parkedTasks()))])];
    const pipe = this.redis.pipeline();
    for (const t of tasks) pipe.zrange(gateKeys.slots(t), 0, -1).zrange(gateKeys.parked(t), 0, -1);
    const res = tasks.length > 0 ? ((await pipe.exec()) ?? []) : [];
    const ids = [...new Set(res.flatMap(([, v]) => (v as string[] | null) ?? []))];
    const out: RunRecord[] = [];
    for (let i = 0; i < ids.length; i += 200) {
      for (const r of await this.getMany(ids.slice(i, i + 200))) {
        if (!r || !statuses.includes(r.status)) continue;
        if (opts.trigger && r.trigger !== opts.trigger) continue;
        if (opts.dead !== undefined && Boolean(r.dead) !== opts.dead) continue;
        out.push(r);
      }
    }
    // Run ids are ULIDs: newest first, as the history listing orders them.
    return out.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1)).slice(0, limit);
  }

  /** The newest run of a task, if any. */
  async last(task: string): Promise<RunRecord | undefined> {
    const [id] = await this.redis.zrevrange(keys.taskRuns(task), 0, 0);
    return id ? this.get(id) : undefined;
  }

  /**
   * Keeps the newest `keep` runs of a task, and with `maxAgeMs` also deletes its ended runs
   * created longer ago than that (in-progress runs are never deleted).
   */
  async trim(task: string, keep: number, maxAgeMs?: number, now = Date.now()): Promise<number> {
    const cutoff = maxAgeMs === undefined ? '' : String(now - maxAgeMs);
    return this.redis.runletTrimTaskRuns(
      keys.taskRuns(task),
      keys.allRuns(),
      String(keep),
      ...runParts(),
      TERMINAL_STATUSES.join(','),
      cutoff,
    );
  }

  /**
   * Deletes every ended run created longer ago than `maxAgeMs`, of any task (also one no
   * longer configured, or that never runs again), in batches so no script runs long.
   */
  async trimAged(maxAgeMs: number, now = Date.now(), batch = 500): Promise<number> {
    let total = 0;
    for (;;) {
      const [deleted, looked] = await this.redis.runletTrimAgedRuns(
        keys.allRuns(),
        String(now - maxAgeMs),
        ...runParts(),
        ...keys.taskRunsAffixes(),
        TERMINAL_STATUSES.join(','),
        String(batch),
      );
      total += deleted;
      // A batch that deleted nothing is all in-progress runs: the rest are newer than those.
      if (looked < batch || deleted === 0) return total;
    }
  }

  async runIdForDedupeKey(dedupeKey: string): Promise<string | undefined> {
    return (await this.redis.get(keys.dedupe(dedupeKey))) ?? undefined;
  }
}

/** What a read loads besides the record's hash, transitions and attempts. */
export interface ReadOptions {
  /** The log tail and the output. */
  readonly withLogs?: boolean;
  /** The payload (keys.payload): for the run's own page, its container, running it again. */
  readonly withPayload?: boolean;
}

export interface RunStoreOptions {
  /**
   * Asked after each write a caller acts on next, when Redis has replicas that a failover
   * may promote (Sentinel): see `replicated` and lib/replicas.ts. Unset: no waiting.
   */
  readonly replicas?: { ask(): Promise<ReplicaAnswer> };
}

/** What an attempt left for the record: its log tail (and where it ends) and its output. */
export interface AttemptLeft {
  readonly logTail: string;
  /** Where the tail ends in the attempt's output (bytes); unknown when absent. */
  readonly logBytes?: number;
  readonly output?: string;
  readonly outputError?: string;
}

function keptTail(tail: string): string {
  return tail.length > LOG_TAIL_BYTES ? tail.slice(-LOG_TAIL_BYTES) : tail;
}

/** The retention scripts join a run's keys from ids they read in Redis: these are the parts (keys.ts). */
function runParts(): [runPrefix: string, partSuffixes: string] {
  return [keys.runPrefix(), keys.runPartSuffixes().join(',')];
}

/**
 * The arguments both guarded scripts (transition, endAttempt) start with — new status, time,
 * transition JSON, allowed current statuses, terminal statuses, the ended stream's length and
 * the changes channel — and the hash fields to set.
 */
function guardedChange(
  status: RunStatus,
  opts: { from: readonly RunStatus[] | '*'; reason?: string; fields?: Fields; now?: number },
): [string[], string[]] {
  const now = opts.now ?? Date.now();
  const t: Transition = { status, at: now, ...(opts.reason ? { reason: opts.reason } : {}) };
  const head = [
    status,
    String(now),
    JSON.stringify(t),
    opts.from === '*' ? '*' : opts.from.join(','),
    TERMINAL_STATUSES.join(','),
    String(ENDED_STREAM_MAXLEN),
    CHANGES_CHANNEL,
  ];
  return [head, flatten({ ...opts.fields, ...(opts.reason !== undefined ? { reason: opts.reason } : {}) })];
}

function flatten(obj: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    out.push(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return out;
}

const NUMERIC = [
  'createdAt',
  'updatedAt',
  'scheduledAt',
  'startedAt',
  'finishedAt',
  'exitCode',
  'memoryBytes',
  'missedTicks',
  'attempt',
  'maxAttempts',
  'retryAt',
  'waitReasonAt',
  'deadline',
] as const;

function toRecord(h: Record<string, string>, transitions: Transition[], attempts: AttemptRecord[], logTail?: string): RunRecord {
  const num = (k: string) => (h[k] !== undefined && h[k] !== '' ? Number(h[k]) : undefined);
  const rec: Record<string, unknown> = {
    id: h.id,
    task: h.task,
    trigger: h.trigger as TriggerKind,
    dedupeKey: h.dedupeKey,
    status: h.status as RunStatus,
    transitions,
    attempts,
  };
  for (const k of NUMERIC) if (num(k) !== undefined) rec[k] = num(k);
  for (const k of [
    'node',
    'daemon',
    'containerId',
    'image',
    'reason',
    'retryOf',
    'contentType',
    'cause',
    'waitReason',
    'waitReasonNode',
    'claim',
    'job',
    'requestedBy',
    'cancelledBy',
  ] as const)
    if (h[k] !== undefined) rec[k] = h[k];
  if (h.backfill === 'true') rec.backfill = true;
  if (h.dead === 'true') rec.dead = true;
  if (h.headers !== undefined) rec.headers = JSON.parse(h.headers);
  if (h.usage !== undefined) rec.usage = JSON.parse(h.usage) as Usage;
  if (logTail !== undefined) rec.logTail = logTail;
  return rec as unknown as RunRecord;
}
