import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/lib/logger.js';
import { keys } from '../src/runs/keys.js';
import { RunStore, type RunReader } from '../src/runs/store.js';
import type { RunRecord } from '../src/runs/types.js';
import { afterGroup, AfterTrigger } from '../src/triggers/after.js';
import type { TriggerDeps } from '../src/triggers/types.js';
import { configFrom, removeClusterContainers, startTestDaemon, useDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

const YAML = `
defaults: { image: runlet/busybox:local, timeout: 30s }
tasks:
  archive:
    command: [sh, -c, 'echo "{\\"archived\\": 42}" > /runlet/output.json']
  rollup:
    after: { task: archive, status: [succeeded] }
    command: [sh, -c, 'cat /runlet/payload.json > /runlet/output.json']
  on-failure:
    after: { task: archive, status: [failed] }
    command: [sh, -c, 'cat /runlet/payload.json > /runlet/output.json']
  broken:
    command: [sh, -c, 'exit 3']
  report:
    after:
      - { task: rollup }
      - { task: broken, status: failed }
    command: [sh, -c, 'cat /runlet/payload.json > /runlet/output.json']
`;

async function runsOf(daemon: TestDaemon, task: string): Promise<RunRecord[]> {
  return daemon.store.list({ task, limit: 100 });
}

/** Waits until the task has `n` runs, all ended; fails after `ms`. */
async function endedRunsOf(daemon: TestDaemon, task: string, n: number, ms = 30_000): Promise<RunRecord[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const runs = await runsOf(daemon, task);
    if (runs.length >= n) return Promise.all(runs.map((r) => daemon.waitForEnd(r.id)));
    if (Date.now() > deadline) throw new Error(`${task} has ${runs.length} runs, expected ${n}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('after: chaining through a running daemon', () => {
  const ctx = useDaemon(YAML);

  it('a succeeded run starts its follower once, with its id, status and output as payload, and the chain goes on', async () => {
    const { runId } = await ctx.daemon.submit({ task: 'archive', trigger: 'manual', dedupeKey: 'archive:manual:t1' });
    const archive = await ctx.daemon.waitForEnd(runId);
    expect(archive.status).toBe('succeeded');

    const [rollup] = await endedRunsOf(ctx.daemon, 'rollup', 1);
    expect(rollup!.trigger).toBe('after');
    expect(rollup!.dedupeKey).toBe(`rollup:after:${runId}`);
    expect(rollup!.cause).toBe(`run ${runId} of archive ended succeeded`);
    expect(JSON.parse(rollup!.output!)).toEqual({ runId, task: 'archive', status: 'succeeded', exitCode: 0, output: { archived: 42 } });

    // rollup → report (status defaults to succeeded)
    const [report] = await endedRunsOf(ctx.daemon, 'report', 1);
    expect(JSON.parse(report!.output!)).toMatchObject({ runId: rollup!.id, task: 'rollup', status: 'succeeded' });

    // The failure follower did not run for a success.
    await new Promise((r) => setTimeout(r, 500));
    expect(await runsOf(ctx.daemon, 'on-failure')).toHaveLength(0);
    expect(await runsOf(ctx.daemon, 'rollup')).toHaveLength(1);
  });

  it('a follower for [failed] runs on a failure, and a list of after: entries each count', async () => {
    const { runId } = await ctx.daemon.submit({ task: 'broken', trigger: 'manual', dedupeKey: 'broken:manual:t2' });
    expect((await ctx.daemon.waitForEnd(runId)).status).toBe('failed');
    const reports = await endedRunsOf(ctx.daemon, 'report', 2);
    const fromBroken = reports.find((r) => r.dedupeKey === `report:after:${runId}`);
    expect(JSON.parse(fromBroken!.output!)).toMatchObject({ runId, task: 'broken', status: 'failed', exitCode: 3 });
  });
});

describe('after: two daemons on one Redis', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  const daemons: TestDaemon[] = [];
  beforeAll(async () => {
    redis = await startTestRedis();
    for (const node of ['node-a', 'node-b']) daemons.push(await startTestDaemon({ config: configFrom(YAML), redisUrl: redis.url, node }));
  });
  afterAll(async () => {
    for (const d of daemons) await d.stop();
    if (daemons[0]) await removeClusterContainers(daemons[0].identity.clusterId);
    await redis?.stopAndClean();
  });

  it('start each follower once, whichever daemon reads the end', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++)
      ids.push((await daemons[i % 2]!.submit({ task: 'archive', trigger: 'manual', dedupeKey: `archive:manual:two-${i}` })).runId);
    const rollups = await endedRunsOf(daemons[0]!, 'rollup', 4);
    await new Promise((r) => setTimeout(r, 1000));
    const again = await runsOf(daemons[0]!, 'rollup');
    expect(again).toHaveLength(4);
    // Listings carry no payloads (they are kept apart): each follower is read with its own.
    const withPayloads = await daemons[0]!.store.getMany(
      rollups.map((r) => r.id),
      { withPayload: true },
    );
    expect(new Set(withPayloads.map((r) => (r!.payload as { runId: string }).runId))).toEqual(new Set(ids));
  });
});

describe('after: a daemon that died before acknowledging', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let conn: Redis;
  beforeAll(async () => {
    redis = await startTestRedis();
    conn = new Redis({ path: redis.path });
  });
  afterAll(async () => {
    conn.disconnect();
    await redis?.stopAndClean();
  });

  it('leaves the entry pending; another daemon claims it and the follower run is made once', async () => {
    const config = configFrom(YAML);
    const store = new RunStore(conn);
    const created: string[] = [];
    // Records the follower's run as dispatch would (dedupe claim and record); the queue is
    // not what this test is about.
    const deps = (daemonId: string): TriggerDeps =>
      ({
        config,
        store: store as RunReader,
        redis: conn,
        identity: { node: 'n', clusterId: 'c', daemonId },
        logger: createLogger({ level: 'silent' }),
        submit: async (request) => {
          const res = await store.create(request);
          if (res.created) created.push(res.runId);
          return res;
        },
      }) as TriggerDeps;

    const AFTER_GROUP = afterGroup([config.tasks.rollup!]);
    await conn.xgroup('CREATE', keys.ended(), AFTER_GROUP, '$', 'MKSTREAM');
    const { runId } = await store.create({ task: 'archive', trigger: 'manual', dedupeKey: 'archive:manual:ghost' });
    await store.transition(runId, 'succeeded', { from: ['queued'] });
    // The "dead" daemon reads the entry and never acknowledges it.
    const taken = await conn.xreadgroup('GROUP', AFTER_GROUP, 'dead-daemon', 'COUNT', 10, 'STREAMS', keys.ended(), '>');
    expect(taken).not.toBeNull();

    const survivor = new AfterTrigger(deps('survivor'), [config.tasks.rollup!], 400);
    const late = new AfterTrigger(deps('late'), [config.tasks.rollup!], 400);
    await survivor.start();
    await late.start();
    const deadline = Date.now() + 10_000;
    while ((await conn.xpending(keys.ended(), AFTER_GROUP))[0] !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1000));
    await survivor.stop();
    await late.stop();

    expect((await conn.xpending(keys.ended(), AFTER_GROUP))[0]).toBe(0);
    expect(created).toHaveLength(1);
    const follower = await store.get(created[0]!);
    expect(follower).toMatchObject({ task: 'rollup', trigger: 'after', dedupeKey: `rollup:after:${runId}` });
  });
});
