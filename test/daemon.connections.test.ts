import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { configFrom, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// A daemon's Redis connections follow its pools and trigger sources, not its tasks: a
// platform team puts hundreds of tasks on one cluster. Counted with CLIENT LIST on a Redis
// of the daemon's own, idle, with 5 tasks and with 600: the same count.

function configWith(tasks: number): string {
  const lines = ['defaults: { image: runlet/busybox:local, memory: 16m }', 'pools:', '  heavy: { concurrency: 1 }', 'tasks:'];
  for (let i = 0; i < tasks; i++) {
    // Two pools, cron and manual tasks, several limits and overlap policies.
    const pool = i % 2 === 0 ? 'default' : 'heavy';
    const overlap = ['skip', 'queue', 'allow', 'bufferOne'][i % 4];
    lines.push(`  t${i}: { schedule: "0 3 * * *", pool: ${pool}, overlap: ${overlap}, concurrency: ${1 + (i % 3)}, command: ["true"] }`);
  }
  return lines.join('\n');
}

const started: Array<{ daemon: TestDaemon; stop: () => Promise<void> }> = [];
afterAll(async () => {
  for (const s of started) await s.stop();
});

/** Connections the daemon holds on its own Redis, by client name, once it is up and idle. */
async function connectionsOf(tasks: number): Promise<{ total: number; names: string[] }> {
  const redis = await startTestRedis();
  const daemon = await startTestDaemon({ config: configFrom(configWith(tasks)), redisUrl: redis.url });
  started.push({ daemon, stop: async () => (await daemon.stop(), await redis.stopAndClean()) });
  const probe = new Redis({ path: redis.path });
  try {
    // Settled: every worker, reader and subscriber connects while the daemon starts.
    await new Promise((r) => setTimeout(r, 1_000));
    const list = (await probe.client('LIST')) as string;
    const mine = list
      .trim()
      .split('\n')
      .filter((line) => !/ cmd=client\|list /.test(line));
    return { total: mine.length, names: mine.map((l) => /(?:^| )name=(\S*)/.exec(l)?.[1] ?? '').sort() };
  } finally {
    probe.disconnect();
  }
}

describe("a daemon's Redis connections", () => {
  it('do not grow with its number of tasks (5 tasks and 600, two pools: the same count)', async () => {
    const few = await connectionsOf(5);
    const many = await connectionsOf(600);
    console.log(`Redis connections: 5 tasks → ${few.total} (${few.names.join(', ')}); 600 tasks → ${many.total}`);
    expect(many.total).toBe(few.total);
    expect(many.names).toEqual(few.names);
    // A handful: the daemon's own, the queue connection, one blocking reader per pool, the
    // readers of ended runs and cancels, the live-view subscriber.
    expect(few.total).toBeLessThanOrEqual(12);
  }, 120_000);
});
