import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAUSE_SYNC_MS } from '../src/dispatch/pause.js';
import type { RunRecord } from '../src/runs/types.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

// Pauses live in Redis; a Redis that comes back empty (FLUSHALL here; a failover to an empty
// replica or a restart without the append-only file alike) must not lift them. Each daemon
// keeps every task's latest pause or resume with its time and puts back what Redis lost;
// the latest change wins, so a resume made just before the emptying is not undone by a
// daemon that still remembers the task paused.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 10s }
tasks:
  held:    { schedule: "* * * * * *", command: [echo, held] }
  let-go:  { schedule: "*/2 * * * * *", concurrency: 2, command: [echo, let-go] }
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let client: Redis;
const daemons: TestDaemon[] = [];
let flushedAt = 0;

const post = (d: TestDaemon, path: string) => fetch(`${d.url}${path}`, { method: 'POST' });

/** Ticks of `task` scheduled after the flush that ended. */
async function ticksAfterFlush(task: string): Promise<RunRecord[]> {
  const runs = await daemons[0]!.store.list({ task, limit: 100 });
  return runs.filter((r) => r.scheduledAt! > flushedAt && ['succeeded', 'skipped', 'failed'].includes(r.status));
}

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis({ path: redis.path });
  const config = configFrom(CONFIG);
  daemons.push(await startTestDaemon({ config, redisUrl: redis.url, node: 'pauses-a' }));
  daemons.push(await startTestDaemon({ config, redisUrl: redis.url, node: 'pauses-b' }));
  const [a, b] = daemons as [TestDaemon, TestDaemon];
  // Both tasks paused on A; B learns of it within a sync period.
  await post(a, '/api/tasks/held/pause');
  await post(a, '/api/tasks/let-go/pause');
  await new Promise((r) => setTimeout(r, PAUSE_SYNC_MS + 500));
  // Then `let-go` is resumed on B, and Redis is emptied right after: A, which has not
  // synced since, still remembers it paused.
  await post(b, '/api/tasks/let-go/resume');
  await client.flushall();
  flushedAt = Date.now();
});
afterAll(async () => {
  for (const d of daemons) await d.stop();
  if (daemons[0]) await removeClusterContainers(daemons[0].identity.clusterId);
  client?.disconnect();
  await redis?.stopAndClean();
});

describe('pauses when Redis comes back empty (FLUSHALL)', () => {
  it('a paused task stays paused: its ticks after the flush are skipped, none runs', async () => {
    const ticks = await until('three ticks of held after the flush', async () => {
      const t = await ticksAfterFlush('held');
      return t.length >= 3 && t;
    });
    for (const r of ticks) {
      expect(r.status).toBe('skipped');
      expect(r.reason).toBe('task is paused (runlet resume held to resume)');
    }
    const tasks = (await (await fetch(`${daemons[1]!.url}/api/tasks`)).json()) as { tasks: Array<{ name: string; paused: boolean }> };
    expect(tasks.tasks.find((t) => t.name === 'held')?.paused).toBe(true);
    // Put back, and said so.
    expect(daemons.some((d) => d.logs.lines.some((l) => String(l.msg).startsWith('redis had lost that this task is paused')))).toBe(true);
  });

  it('a task resumed just before the flush stays resumed, though another daemon remembered it paused', async () => {
    // Within a sync period or two both daemons have put back what they knew; the resume is newer.
    await new Promise((r) => setTimeout(r, 2 * PAUSE_SYNC_MS));
    const settledAt = Date.now();
    const ran = await until('two ticks of let-go that ran', async () => {
      const t = (await ticksAfterFlush('let-go')).filter((r) => r.scheduledAt! > settledAt);
      return t.length >= 2 && t;
    });
    expect(ran.map((r) => r.status)).toEqual(ran.map(() => 'succeeded'));
    expect(await client.sismember('runlet:paused', 'let-go')).toBe(0);
  });
});
