import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type EmbeddedRedis } from '../src/lib/embedded-redis.js';
import { isTerminal, type RunRecord } from '../src/runs/types.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { watchStarts } from './helpers/docker.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

// Redis restarted under a running daemon, from its append-only file (a `systemctl restart
// redis`, an upgrade): runs in flight, a per-second cron firing through the gap, a manual
// run asked for while Redis is away. Nothing may be lost (every tick of the window and every
// acknowledged run exists and ends), nothing run twice (one container start per run), and
// the daemon reconnects and carries on without taking the restart for an emptying.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  tick: { schedule: "* * * * * *", concurrency: 4, command: [sh, -c, "echo tick"] }
  long: { concurrency: 4, command: [sh, -c, "sleep 5; echo survived the restart"] }
  follow: { after: { task: long }, concurrency: 4, command: [sh, -c, "echo followed"] }
`;
const DOWN_MS = 3_000;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let restarted: EmbeddedRedis | undefined;
let daemon: TestDaemon;
let starts: Awaited<ReturnType<typeof watchStarts>>;
let windowFrom = 0;
let windowTo = 0;
const inFlight: string[] = [];
let askedWhileDown: Promise<Response>;

beforeAll(async () => {
  redis = await startTestRedis();
  // Queue locks of 2 s: the gap outlasts them, so the restarted Redis finds every job's lock expired.
  daemon = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: redis.url, node: 'restart-aof', stalledMs: 2_000 });
  starts = await watchStarts(daemon.identity.clusterId);
  // Two runs whose containers run through the restart.
  for (const i of [1, 2]) inFlight.push((await daemon.submit({ task: 'long', trigger: 'manual', dedupeKey: `long:manual:r${i}` })).runId);
  await until('both long runs running', async () => (await daemon.store.getMany(inFlight)).every((r) => r?.status === 'running'), 30_000);
  windowFrom = Date.now();
  // SIGTERM: redis-server writes its append-only file and exits; then the same data dir and socket again.
  await redis.stop();
  askedWhileDown = fetch(`${daemon.url}/api/tasks/long/runs`, { method: 'POST' });
  await new Promise((r) => setTimeout(r, DOWN_MS));
  restarted = await startEmbeddedRedis(redis.dir);
  // A few seconds of ticks after the restart too.
  await new Promise((r) => setTimeout(r, 4_000));
  windowTo = Date.now();
}, 90_000);
afterAll(async () => {
  starts?.stop();
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await restarted?.stop();
  await redis?.stopAndClean();
});

/** The records of `ids` once all have ended; on a timeout, the error says where each one stood. */
async function ended(ids: string[], ms = 50_000): Promise<RunRecord[]> {
  try {
    return await until(
      `runs ${ids.join(', ')} to end`,
      async () => {
        const runs = await daemon.store.getMany(ids, { withLogs: true });
        return runs.every((r) => r && isTerminal(r.status)) && (runs as RunRecord[]);
      },
      ms,
      200,
    );
  } catch (err) {
    const runs = await daemon.store.getMany(ids);
    const where = runs.map((r, i) => `${ids[i]}: ${r ? r.transitions.map((t) => `${t.status}@${t.at}`).join(' ') : 'no record'}`);
    throw new Error(`${(err as Error).message}\n${where.join('\n')}`);
  }
}

describe('Redis restarted from its append-only file under a running daemon', () => {
  it('the runs in flight end once each, with their outcome, and start their after: followers', async () => {
    const runs = await ended(inFlight);
    for (const r of runs) {
      expect(r.status).toBe('succeeded');
      expect(r.logTail).toContain('survived the restart');
      expect(starts.starts.get(r.id)).toBe(1);
    }
    // Chaining reads the ended-runs stream through a consumer group on a blocking connection: it reconnected too.
    const followers = await until('a follower of each', async () => {
      const ids = await Promise.all(inFlight.map((id) => daemon.store.runIdForDedupeKey(`follow:after:${id}`)));
      return ids.every(Boolean) && (ids as string[]);
    });
    expect((await ended(followers)).map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
  });

  it('a run asked for while Redis was away is acknowledged once it is back, exists and runs once', async () => {
    const res = await askedWhileDown;
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const [run] = await ended([id]);
    expect(run!.status).toBe('succeeded');
    expect(starts.starts.get(id)).toBe(1);
  });

  it('every cron tick of the window, before, during and after the gap, ran exactly once', async () => {
    const firstTick = Math.ceil((windowFrom + 1) / 1000) * 1000;
    const lastTick = Math.floor((windowTo - 1) / 1000) * 1000;
    const expected: number[] = [];
    for (let t = firstTick; t <= lastTick; t += 1000) expected.push(t);
    expect(expected.length).toBeGreaterThanOrEqual(DOWN_MS / 1000 + 4);
    const ids = await Promise.all(expected.map((t) => daemon.store.runIdForDedupeKey(`tick:cron:${t}`)));
    expect(ids.filter((id) => id === undefined)).toEqual([]);
    const runs = await ended(ids as string[]);
    expect(runs.map((r) => r.status)).toEqual(runs.map(() => 'succeeded'));
    expect(runs.map((r) => starts.starts.get(r.id))).toEqual(runs.map(() => 1));
  });

  it('the daemon did not take the restart for an emptying, and still takes new runs', async () => {
    expect(daemon.logs.lines.filter((l) => /redis came back empty/.test(String(l.msg)))).toEqual([]);
    const { runId } = await daemon.submit({ task: 'long', trigger: 'manual', dedupeKey: 'long:manual:after' });
    const [run] = await ended([runId]);
    expect(run!.status).toBe('succeeded');
  });
});
