import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/runs/types.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// Pause (API, cluster-wide) and suspend (config): ticks keep coming and each is recorded
// as skipped with its reason; a person's manual run still runs.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 10s }
tasks:
  ticking: { schedule: "* * * * * *", command: [echo, tick] }
  frozen:  { schedule: "* * * * * *", command: [echo, never], suspended: true }
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
const daemons: TestDaemon[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  const config = configFrom(CONFIG);
  daemons.push(await startTestDaemon({ config, redisUrl: redis.url, node: 'pause-a' }));
  daemons.push(await startTestDaemon({ config, redisUrl: redis.url, node: 'pause-b' }));
});
afterAll(async () => {
  for (const d of daemons) await d.stop();
  if (daemons[0]) await removeClusterContainers(daemons[0].identity.clusterId);
  await redis?.stopAndClean();
});

const post = (d: TestDaemon, path: string, body?: unknown) =>
  fetch(`${d.url}${path}`, {
    method: 'POST',
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });

/** The next n ticks of `task` that end (ran or skipped), as seen by either daemon. */
function nextEnds(task: string, n: number): Promise<RunRecord[]> {
  return new Promise((resolve) => {
    const seen = new Map<string, true>();
    const offs = daemons.map((d) =>
      d.events.on('run:finished', async (e) => {
        if (e.task !== task || seen.has(e.runId)) return;
        seen.set(e.runId, true);
        if (seen.size === n) {
          offs.forEach((off) => off());
          resolve((await daemons[0].store.getMany([...seen.keys()])) as RunRecord[]);
        }
      }),
    );
  });
}

describe('pause, resume and suspend', () => {
  it('a suspended task records each tick as skipped, with the reason', async () => {
    const runs = await nextEnds('frozen', 2);
    for (const r of runs) {
      expect(r.status).toBe('skipped');
      expect(r.reason).toBe('task is suspended in the config (suspended: true)');
      expect(r.trigger).toBe('cron');
    }
    // ...and counted: a skip is never silent, in the history or in the metrics.
    const metrics = (await Promise.all(daemons.map(async (d) => (await fetch(`${d.url}/metrics`)).text()))).join('\n');
    const counted = [...metrics.matchAll(/^runlet_runs_skipped_total\{task="frozen",reason="suspended"\} (\d+)$/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    expect(counted).toBeGreaterThanOrEqual(2);
  });

  it('pausing on one daemon holds on both; ticks are skipped until resumed, and manual runs still run', async () => {
    const [a, b] = daemons;
    const pausedAt = Date.now();
    expect((await (await post(b, '/api/tasks/ticking/pause')).json()) as unknown).toEqual({ task: 'ticking', paused: true });
    // Every tick scheduled after the pause fires after it, on either daemon, and is skipped.
    const paused = (await nextEnds('ticking', 5)).filter((r) => r.scheduledAt! > pausedAt);
    expect(paused.length).toBeGreaterThanOrEqual(3);
    expect(paused.every((r) => r.status === 'skipped' && r.reason === 'task is paused (runlet resume ticking to resume)')).toBe(true);
    const tasks = (await (await fetch(`${a.url}/api/tasks`)).json()) as {
      tasks: Array<{ name: string; paused: boolean; suspended: boolean }>;
    };
    expect(tasks.tasks.find((t) => t.name === 'ticking')).toMatchObject({ paused: true, suspended: false });

    const manual = (await (await post(a, '/api/tasks/ticking/runs')).json()) as { id: string };
    expect((await a.waitForEnd(manual.id)).status).toBe('succeeded');

    const resumedAt = Date.now();
    await post(a, '/api/tasks/ticking/resume');
    const resumed = (await nextEnds('ticking', 5)).filter((r) => r.scheduledAt! > resumedAt + 1000);
    expect(resumed.length).toBeGreaterThanOrEqual(2);
    expect(resumed.every((r) => r.status === 'succeeded')).toBe(true);
  });
});
