import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunletConfig } from '../src/config/types.js';
import { markLost } from '../src/dispatch/attempt-end.js';
import type { RunContext } from '../src/dispatch/context.js';
import { clusterIdOf } from '../src/dispatch/identity.js';
import { PoolQueues } from '../src/dispatch/queues.js';
import { startReconciler } from '../src/dispatch/reconcile.js';
import { watchRedelivered } from '../src/dispatch/redelivered.js';
import { endAttempt } from '../src/dispatch/retries.js';
import { createLogger } from '../src/lib/logger.js';
import { RunletEvents } from '../src/runs/events.js';
import { keys } from '../src/runs/keys.js';
import { MOVES, type RunRecord } from '../src/runs/types.js';
import type { Runtime } from '../src/runtime/types.js';
import { configFrom, LogLines } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';
import { runContextOf } from './helpers/run-context.js';
import { until } from './helpers/until.js';

// An attempt whose holder died is declared lost once. Several judge it dead, each from its
// own read of the run: the redelivered job of the dead daemon (redelivered.ts), the reconciler
// of every daemon of the node (reconcile.ts), start-up settling. All name the same claim, the
// dead holder's, which a declaration leaves in place (that holder's real outcome may still
// replace `lost`), so the claim does not fence them from each other: the status does. The
// interleaving of daemon.warm-crash.test.ts, made deterministic: the redelivered job read the
// run while it was running, the reconciler declared it lost, then the job declares it too.
// Real Redis and the real dispatch code; no engine (nothing of the run is on it: a warm
// instance's labels name no run).

const CONFIG = `
tasks:
  once: { image: runlet/busybox:local, timeout: 60s }
  twice: { image: runlet/busybox:local, timeout: 60s, retries: { attempts: 2, delay: 1s } }
`;
const NODE = 'lost-once-node';
const DEAD = 'dead-daemon';

let server: Awaited<ReturnType<typeof startTestRedis>>, redis: Redis, queueRedis: Redis, queues: PoolQueues;
let config: RunletConfig, clusterId: string;

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis({ path: server.path });
  queueRedis = new Redis({ path: server.path, maxRetriesPerRequest: null });
  queues = new PoolQueues(queueRedis);
  config = configFrom(CONFIG);
  clusterId = await clusterIdOf(redis);
});
afterAll(async () => {
  await queues?.close();
  queueRedis?.disconnect();
  redis?.disconnect();
  await server?.stopAndClean();
});

/** The live daemon of the node: an engine with nothing of the run on it (no warm listing either). */
function liveDaemon(): RunContext & { logs: LogLines; finished: string[] } {
  const logs = new LogLines();
  const logger = createLogger({ level: 'debug', destination: logs });
  const runtime = { list: async () => [] } as unknown as Runtime;
  const events = new RunletEvents();
  const finished: string[] = [];
  events.on('run:finished', (e: { runId: string }) => finished.push(e.runId));
  return {
    ...runContextOf({ config, runtime, redis, identity: { node: NODE, clusterId, daemonId: 'live-daemon' }, events, logger, queues }),
    logs,
    finished,
  };
}

let n = 0;
/** A run of `task` claimed by a daemon of this node that is dead now (no heartbeat), running. */
async function runningOnDeadDaemon(ctx: RunContext, task: 'once' | 'twice'): Promise<{ runId: string; claim: string }> {
  const maxAttempts = config.tasks[task]!.retries.attempts;
  const { runId } = await ctx.store.create({ task, trigger: 'manual', dedupeKey: `${task}:manual:lost-once-${n++}` }, { maxAttempts });
  await ctx.store.confirmQueued(runId);
  // It holds its task's slot, as every run from admission to its end does (the reconciler finds runs in progress by it).
  expect(await ctx.gate.admit(task, runId)).toBe(true);
  const claim = `${DEAD}:a1:x`;
  expect(await ctx.store.claim(runId, { attempt: 1, token: claim, fields: { node: NODE, daemon: DEAD, job: `${runId}-a1` } })).toBe(true);
  expect(await ctx.store.fencedTransition(runId, MOVES.run.to, { from: MOVES.run.from, attempt: 1, claim })).toBe(true);
  return { runId, claim };
}

async function endedEntries(runId: string): Promise<string[]> {
  const entries = await redis.xrange(keys.ended(), '-', '+');
  return entries.filter(([, f]) => f[f.indexOf('run') + 1] === runId).map(([, f]) => f[f.indexOf('status') + 1]!);
}

describe('an attempt of a dead holder is declared lost once', () => {
  it('the reconciler declares it first, then the redelivered job that read it running: one attempt, lost, one end', async () => {
    const ctx = liveDaemon();
    const { runId } = await runningOnDeadDaemon(ctx, 'once');
    // What the redelivered job read (runJob), before anyone declared it lost.
    const read = (await ctx.store.get(runId)) as RunRecord;
    expect(read.status).toBe('running');

    const stop = startReconciler(ctx, { holdUntil: () => undefined }, 50);
    await until('the reconciler declared it lost', async () => (await ctx.store.get(runId))?.status === 'lost', 10_000, 20);
    await stop();
    await watchRedelivered(ctx, read, { id: `${runId}-a1`, release: () => undefined });

    const run = (await ctx.store.get(runId))!;
    expect(run.status).toBe('lost');
    expect(run.reason).toBe('the daemon running it on this node is gone and its container with it');
    expect(run.attempts.map((a) => [a.attempt, a.status, a.reason])).toEqual([
      [1, 'lost', 'the daemon running it on this node is gone and its container with it'],
    ]);
    expect(run.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'lost']);
    expect(await endedEntries(runId)).toEqual(['lost']);
    expect(ctx.finished.filter((id) => id === runId)).toHaveLength(1);
  });

  it('of declarers racing with the same read, one ends the attempt; a later one, even saying it never started, is refused', async () => {
    const ctx = liveDaemon();
    const { runId, claim } = await runningOnDeadDaemon(ctx, 'once');
    const read = (await ctx.store.get(runId)) as RunRecord;
    const won = await Promise.all(
      ['redelivered', 'reconciler a', 'reconciler b'].map((who) => markLost(ctx, read, 1, `declared by ${who}`, { claim })),
    );
    expect(won.filter(Boolean)).toHaveLength(1);
    // One that read it `starting` would call it never started, which gives a place back: not
    // to a run already reported lost.
    expect(await markLost(ctx, read, 1, 'declared late', { claim, neverStarted: true })).toBe(false);

    const run = (await ctx.store.get(runId))!;
    expect(run).toMatchObject({ status: 'lost', attempt: 1 });
    expect(run.attempts.map((a) => a.status)).toEqual(['lost']);
    expect(run.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'lost']);
    expect(await endedEntries(runId)).toEqual(['lost']);
    expect(await queues.get('default').getJob(`${runId}-a2`)).toBeUndefined();

    // Its real outcome still replaces `lost` (the holder was only cut off, and came back).
    const real = await endAttempt(ctx, runId, config.tasks.once!, {
      attempt: 1,
      claim,
      status: 'failed',
      exitCode: 3,
      finishedAt: Date.now(),
      usage: { containerSeconds: 1, gbSeconds: 0 },
    });
    expect(real.kind).toBe('ended');
    expect((await ctx.store.get(runId))?.attempts.map((a) => a.status)).toEqual(['lost', 'failed']);
  });

  it('with retries left: one retry, however many declare it', async () => {
    const ctx = liveDaemon();
    const { runId, claim } = await runningOnDeadDaemon(ctx, 'twice');
    const read = (await ctx.store.get(runId)) as RunRecord;
    const won = await Promise.all([1, 2, 3].map((i) => markLost(ctx, read, 1, `declared by ${i}`, { claim })));
    expect(won.filter(Boolean)).toHaveLength(1);
    const run = (await ctx.store.get(runId))!;
    expect(run).toMatchObject({ status: 'queued', attempt: 2 });
    expect(run.attempts.map((a) => [a.attempt, a.status])).toEqual([[1, 'lost']]);
    await queues.get('default').remove(`${runId}-a2`);
  });
});
