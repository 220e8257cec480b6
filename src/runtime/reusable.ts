import { randomBytes, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { RunFailedToStart } from './errors.js';
import type { DockerRuntime } from './docker.js';
import type { LambdaRuntimeApi, RuntimeApiEndpoint, RuntimeApiSession } from './lambda-api.js';
import type { Outcome, RunResult, RunSpec, WarmInstance, WarmSpec } from './types.js';

/** Lambda's own init limit: a bootstrap that has not asked for its first invocation by then is recycled. */
export const DEFAULT_INIT_TIMEOUT_MS = 10_000;
/** Recycled after this many invocations by default: a slow leak in a handler cannot grow for ever. */
export const DEFAULT_MAX_INVOCATIONS = 1_000;
/** A reusable container lives at most this long, then is recycled (also bounds what a stuck one costs). */
export const DEFAULT_LIFETIME_MS = 60 * 60_000;
/** The most of an invocation's output kept with its result, as a run keeps its log tail. */
const LOG_TAIL_BYTES = 64 * 1024;

export interface ReusableSpec extends WarmSpec {
  /** Recycle the instance after this many invocations (default DEFAULT_MAX_INVOCATIONS). */
  readonly maxInvocations?: number;
  /** _HANDLER, as Lambda sets it for a custom runtime. */
  readonly handler?: string;
  /** LAMBDA_TASK_ROOT. */
  readonly taskRoot?: string;
  readonly initTimeoutMs?: number;
  readonly lifetimeMs?: number;
}

export interface InvokeOptions {
  /** The invocation's own timeout, counted from the moment the bootstrap receives it; past it the instance is killed. */
  readonly timeoutMs: number;
  /** Lambda-Runtime-Aws-Request-Id (default: a new UUID); the run's id is a good one. */
  readonly requestId?: string;
}

/**
 * How one invocation ended, in the runs' vocabulary: `succeeded` (the bootstrap posted a
 * response: `body`), `failed` (it posted an error: `body` is its error document and
 * `errorType` its type; or an init error; or the container ended), `timed_out`,
 * `oom_killed`. `log` is the output the container wrote while the invocation was in
 * progress, best effort: the engine streams logs a few ms behind, so a last line written just
 * before the response can be missed (or, under reuse, land in the next invocation's).
 */
export interface InvocationResult {
  readonly requestId: string;
  readonly outcome: Outcome;
  readonly body?: Buffer;
  readonly errorType?: string;
  readonly reason?: string;
  /** Epoch ms the bootstrap received it (undefined if it never did) and it ended. */
  readonly startedAt?: number;
  readonly finishedAt: number;
  readonly log: string;
  /** The instance's own invocation count, this one included. */
  readonly sequence: number;
}

interface Invocation {
  readonly requestId: string;
  readonly event: Buffer;
  readonly timeoutMs: number;
  readonly settle: (result: InvocationResult) => void;
  startedAt?: number;
  timer?: NodeJS.Timeout;
  log: Buffer[];
  logBytes: number;
}

/**
 * One container serving invocations one after another through the Lambda Runtime API:
 * never two at once (invoke() on a busy instance throws), each with its own deadline and
 * outcome. After an error, a timeout, an init failure, the container's end, or
 * maxInvocations, the instance is spent: it takes no more invocations, its container is
 * stopped and removed, and `ended` resolves (the pool starts a replacement).
 */
export class ReusableInstance implements RuntimeApiSession {
  /** Resolves when the bootstrap first asks for an invocation (rejects if it never does). */
  readonly ready: Promise<void>;
  /** Resolves once the container is gone, with why the instance was spent. */
  readonly ended: Promise<string>;
  private held: ServerResponse | undefined;
  private current: Invocation | undefined;
  private spentBecause: string | undefined;
  private count = 0;
  private busySince: number | undefined;
  private busyMs = 0;
  private readonly cancel = new AbortController();
  private markReady!: () => void;
  private failReady!: (err: Error) => void;
  private readonly initTimer: NodeJS.Timeout;
  private endpoint!: RuntimeApiEndpoint;
  private instance!: WarmInstance;

  private constructor(
    private readonly runtime: DockerRuntime,
    readonly spec: ReusableSpec,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.failReady = reject;
    });
    this.ready.catch(() => undefined);
    this.initTimer = setTimeout(
      () => this.spend(`the bootstrap did not ask for an invocation within ${this.spec.initTimeoutMs ?? DEFAULT_INIT_TIMEOUT_MS} ms`),
      spec.initTimeoutMs ?? DEFAULT_INIT_TIMEOUT_MS,
    );
    let ended!: (why: string) => void;
    this.ended = new Promise<string>((resolve) => (ended = resolve));
    this.onEnded = ended;
  }

  private readonly onEnded: (why: string) => void;

  /** Starts the container with AWS_LAMBDA_RUNTIME_API pointing at its own endpoint on `api`. */
  static async start(runtime: DockerRuntime, api: LambdaRuntimeApi, spec: ReusableSpec): Promise<ReusableInstance> {
    if (spec.network === 'none')
      throw new RunFailedToStart('reuse needs a network to reach the Lambda Runtime API; this task has network "none"');
    const self = new ReusableInstance(runtime, spec);
    self.endpoint = api.register(self);
    const env: Record<string, string> = {
      AWS_LAMBDA_RUNTIME_API: self.endpoint.value,
      AWS_LAMBDA_FUNCTION_NAME: spec.task,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(Math.floor(spec.memoryBytes / (1024 * 1024))),
      ...(spec.handler !== undefined && { _HANDLER: spec.handler }),
      ...(spec.taskRoot !== undefined && { LAMBDA_TASK_ROOT: spec.taskRoot }),
    };
    try {
      self.instance = await runtime.startReusable(spec, env);
    } catch (err) {
      self.endpoint.close();
      clearTimeout(self.initTimer);
      throw err;
    }
    self.watch();
    return self;
  }

  get instanceId(): string {
    return this.instance.instanceId;
  }
  get containerId(): string {
    return this.instance.containerId;
  }
  get startedAt(): number {
    return this.instance.startedAt;
  }
  /** Invocations served (or in progress). */
  get invocations(): number {
    return this.count;
  }
  get busy(): boolean {
    return this.current !== undefined;
  }
  /** Why it takes no more invocations, or undefined while it does. */
  get spent(): string | undefined {
    return this.spentBecause;
  }
  /** Container ms spent with no invocation in progress (the price of keeping it warm), up to now. */
  idleMs(now = Date.now()): number {
    const busy = this.busyMs + (this.busySince !== undefined ? now - this.busySince : 0);
    return Math.max(0, now - this.instance.startedAt - busy);
  }

  /** Runs one invocation: handed to the bootstrap's next (now, or when it asks), settled by its response, error or deadline. */
  invoke(event: string | Buffer, opts: InvokeOptions): Promise<InvocationResult> {
    if (this.spentBecause)
      return Promise.reject(new RunFailedToStart(`reusable instance ${this.instanceId} is spent: ${this.spentBecause}`));
    if (this.current) return Promise.reject(new Error(`reusable instance ${this.instanceId} is busy: one invocation at a time`));
    return new Promise<InvocationResult>((settle) => {
      this.count += 1;
      this.current = {
        requestId: opts.requestId ?? randomUUID(),
        event: Buffer.isBuffer(event) ? event : Buffer.from(event, 'utf8'),
        timeoutMs: opts.timeoutMs,
        settle,
        log: [],
        logBytes: 0,
      };
      this.busySince = Date.now();
      const held = this.held;
      this.held = undefined;
      if (held) this.hand(held);
    });
  }

  /** Stops and removes the container (no invocation may be in progress, or it fails as cancelled). */
  async retire(why = 'retired'): Promise<string> {
    this.spend(why);
    return this.ended;
  }

  // --- RuntimeApiSession: what the bootstrap's requests do ---

  next(res: ServerResponse): void {
    if (this.spentBecause) return void res.destroy();
    clearTimeout(this.initTimer);
    this.markReady();
    if (this.held) return reply(res, 400, { errorMessage: 'another next is already waiting', errorType: 'InvalidRequest' });
    const current = this.current;
    if (current?.startedAt !== undefined) {
      // Asked for more without answering this one: Lambda counts that as the invocation's failure.
      this.finish({ outcome: 'failed', reason: 'the bootstrap asked for the next invocation without answering this one' });
      this.spend('an invocation was left unanswered');
      return void res.destroy();
    }
    if (current) this.hand(res);
    else this.held = res;
  }

  respond(requestId: string, body: Buffer): number {
    if (!this.isCurrent(requestId)) return 400;
    this.finish({ outcome: 'succeeded', body });
    if (this.count >= (this.spec.maxInvocations ?? DEFAULT_MAX_INVOCATIONS)) this.spend(`served its ${this.count} invocations`);
    return 202;
  }

  fail(requestId: string, body: Buffer, errorType: string | undefined): number {
    if (!this.isCurrent(requestId)) return 400;
    this.finish({ outcome: 'failed', body, errorType, reason: `the function answered with an error${errorType ? ` (${errorType})` : ''}` });
    this.spend('an invocation ended in an error');
    return 202;
  }

  initFailed(body: Buffer, errorType: string | undefined): number {
    this.failReady(new Error(`the bootstrap reported an init error: ${body.toString('utf8').slice(0, 500)}`));
    this.finish({ outcome: 'failed', body, errorType, reason: 'the function failed to initialise' });
    this.spend('init error');
    return 202;
  }

  tooLarge(requestId: string | undefined): void {
    if (requestId === undefined || !this.isCurrent(requestId)) return;
    this.finish({ outcome: 'failed', reason: 'the response was larger than 6 MiB' });
    this.spend('an invocation ended in an error');
  }

  // --- internals ---

  private isCurrent(requestId: string): boolean {
    return this.current?.startedAt !== undefined && this.current.requestId === requestId;
  }

  private hand(res: ServerResponse): void {
    const inv = this.current!;
    inv.startedAt = Date.now();
    const deadline = inv.startedAt + inv.timeoutMs;
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': inv.event.length,
      'lambda-runtime-aws-request-id': inv.requestId,
      'lambda-runtime-deadline-ms': String(deadline),
      'lambda-runtime-invoked-function-arn': `arn:aws:lambda:runlet:000000000000:function:${this.spec.task}`,
      'lambda-runtime-trace-id': `Root=1-${Math.floor(inv.startedAt / 1000).toString(16)}-${randomBytes(12).toString('hex')};Sampled=0`,
    });
    res.end(inv.event);
    // A late instance is killed (it may be stuck in the handler) and replaced by the pool.
    inv.timer = setTimeout(() => {
      this.finish({ outcome: 'timed_out', reason: `exceeded its timeout of ${inv.timeoutMs} ms` });
      this.spend('an invocation timed out');
    }, inv.timeoutMs);
  }

  private finish(end: Omit<InvocationResult, 'requestId' | 'finishedAt' | 'log' | 'sequence' | 'startedAt'>): void {
    const inv = this.current;
    if (!inv) return;
    this.current = undefined;
    clearTimeout(inv.timer);
    if (this.busySince !== undefined) this.busyMs += Date.now() - this.busySince;
    this.busySince = undefined;
    inv.settle({
      ...end,
      requestId: inv.requestId,
      startedAt: inv.startedAt,
      finishedAt: Date.now(),
      log: Buffer.concat(inv.log).toString('utf8'),
      sequence: this.count,
    });
  }

  /** No more invocations: stop the container (the wait in watch() removes it). */
  private spend(why: string): void {
    if (this.spentBecause) return;
    this.spentBecause = why;
    clearTimeout(this.initTimer);
    this.failReady(new Error(`reusable instance spent before it was ready: ${why}`));
    this.endpoint.close();
    this.held?.destroy();
    this.held = undefined;
    this.finish({ outcome: 'cancelled', reason: `the instance was recycled: ${why}` });
    this.cancel.abort(why);
  }

  /** The container's whole life, through the runtime's own wait (limits, OOM, engine breaks); then removal. */
  private watch(): void {
    const lifetime: RunSpec = {
      ...this.spec,
      runId: this.instance.instanceId,
      attempt: 1,
      env: {},
      timeoutMs: this.spec.lifetimeMs ?? DEFAULT_LIFETIME_MS,
    };
    const run = { runId: lifetime.runId, containerId: this.instance.containerId, spec: lifetime };
    void this.runtime
      .wait(run, {
        cancel: this.cancel.signal,
        onLog: (chunk) => {
          const inv = this.current;
          if (!inv || inv.startedAt === undefined) return;
          inv.log.push(chunk);
          inv.logBytes += chunk.length;
          while (inv.logBytes - inv.log[0]!.length >= LOG_TAIL_BYTES) inv.logBytes -= inv.log.shift()!.length;
        },
      })
      .then(
        (result) => this.containerEnded(result),
        (err: unknown) => this.containerEnded({ outcome: 'failed', reason: String(err), logTail: '' }),
      );
  }

  private async containerEnded(result: RunResult): Promise<void> {
    if (!this.spentBecause) {
      // Ended on its own (crash, OOM, exit) or at its lifetime: the invocation in progress ends with it.
      const outcome: Outcome = result.outcome === 'cancelled' ? 'failed' : result.outcome;
      this.finish({ outcome, reason: `the container ended: ${result.reason ?? result.outcome}` });
      this.spend(`the container ended (${result.reason ?? result.outcome})`);
    }
    await this.runtime.remove(this.instance.containerId).catch(() => undefined);
    this.onEnded(this.spentBecause!);
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json' }).end(text);
}

/**
 * Up to `size` reusable instances of one task: an invocation goes to an idle instance, or
 * waits (first come, first served) for one; a spent instance is replaced at once. Nothing
 * bounds the wait here: admission (concurrency, maxQueued, the request's deadline) is the
 * caller's.
 */
export class ReusablePool {
  private readonly instances = new Set<ReusableInstance>();
  private readonly idle: ReusableInstance[] = [];
  private readonly waiting: Array<{ take: (i: ReusableInstance) => void; fail: (e: unknown) => void }> = [];
  private starting = 0;
  /** Instances handed out (lease, invoke) and not given back yet: busy with an invocation. */
  private leased = 0;
  private closed = false;

  constructor(
    private readonly start: () => Promise<ReusableInstance>,
    readonly size: number,
  ) {}

  /** Starts instances up to `size` (warm: N) and waits until their bootstraps are ready. */
  async fill(): Promise<void> {
    const started: Promise<void>[] = [];
    while (this.instances.size + this.starting < this.size) started.push(this.grow());
    await Promise.all(started);
  }

  async invoke(event: string | Buffer, opts: InvokeOptions): Promise<InvocationResult> {
    const instance = await this.acquire();
    try {
      return await instance.invoke(event, opts);
    } finally {
      this.release(instance);
    }
  }

  /**
   * An instance for one invocation, for a caller that acts between taking it and invoking
   * (dispatch records the run started on it first). Give it back with release(instance).
   */
  async lease(): Promise<{ instance: ReusableInstance }> {
    return { instance: await this.acquire() };
  }

  /** Gives back an instance from lease(): to the next waiter, or replaced if it is spent. */
  release(instance: ReusableInstance): void {
    this.leased = Math.max(0, this.leased - 1);
    if (instance.spent) {
      this.instances.delete(instance);
      // A replacement for the spent one, if anyone waits or to keep the pool at its size.
      if (!this.closed) void this.grow().catch(() => undefined);
      return;
    }
    this.offer(instance);
  }

  /**
   * Instances alive now, and of them those serving an invocation (busy) and those waiting
   * for one (idle); the rest are starting (their bootstrap has not asked for work yet).
   */
  counts(): { instances: number; idle: number; busy: number } {
    return { instances: this.instances.size, idle: this.idle.filter((i) => !i.spent).length, busy: this.leased };
  }

  /** Instances alive now (for usage: each one's idleMs()). */
  get members(): readonly ReusableInstance[] {
    return [...this.instances];
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.fail(new Error('the pool is closed'));
    await Promise.all([...this.instances].map((i) => i.retire('pool closed')));
  }

  private acquire(): Promise<ReusableInstance> {
    if (this.closed) return Promise.reject(new Error('the pool is closed'));
    // One spent while idle (its container ended) leaves the idle list only once removed: skip it meanwhile.
    for (let instance = this.idle.shift(); instance; instance = this.idle.shift())
      if (!instance.spent) {
        this.leased++;
        return Promise.resolve(instance);
      }
    const taken = new Promise<ReusableInstance>((take, fail) => this.waiting.push({ take, fail }));
    if (this.instances.size + this.starting < this.size) void this.grow().catch(() => undefined);
    return taken;
  }

  private offer(instance: ReusableInstance): void {
    const waiter = this.waiting.shift();
    if (waiter) {
      this.leased++;
      waiter.take(instance);
    } else this.idle.push(instance);
  }

  private async grow(): Promise<void> {
    if (this.closed || this.instances.size + this.starting >= this.size) return;
    this.starting += 1;
    let instance: ReusableInstance;
    try {
      instance = await this.start();
      this.instances.add(instance);
    } catch (err) {
      this.waiting.shift()?.fail(err);
      throw err;
    } finally {
      this.starting -= 1;
    }
    // Out of the pool as soon as it is spent while idle (init error, its container ended).
    void instance.ended.then(() => {
      const at = this.idle.indexOf(instance);
      if (at >= 0) this.idle.splice(at, 1);
      if (this.instances.delete(instance) && !this.closed) void this.grow().catch(() => undefined);
    });
    if (this.closed) {
      await instance.retire('pool closed');
      return;
    }
    await instance.ready.catch(() => undefined);
    if (instance.spent) return;
    this.offer(instance);
  }
}
