import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../src/runs/keys.js';
import { STARTUP_GRACE_MS } from '../src/triggers/cron.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// Ticks missed while no daemon ran: inside `catchup`, one run for all of them; outside, one
// skipped record that says why. Never one run per missed tick.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 10s }
tasks:
  forgiving: { schedule: "* * * * * *", command: [sh, -c, 'echo "caught up $RUNLET_SCHEDULED_AT"'], catchup: 1m }
  strict:    { schedule: "* * * * * *", command: [echo, strict] }
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let daemon: TestDaemon | undefined;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  if (daemon) {
    await daemon.stop();
    await removeClusterContainers(daemon.identity.clusterId);
  }
  await redis?.stopAndClean();
});

describe('catch-up after downtime', () => {
  it('runs missed ticks once inside the window, and records a skip outside it; ticks of the start-up grace run late', async () => {
    const config = configFrom(CONFIG);
    daemon = await startTestDaemon({ config, redisUrl: redis.url });
    // Let both tasks claim a tick, so there is a "last tick" to miss from.
    await Promise.all(['forgiving', 'strict'].map((t) => daemon!.events.once('run:queued', (e) => e.task === t)));
    await daemon.stop();
    // Missed ticks count from the last tick claimed, which on a loaded machine can be well
    // before stop() returns (it waits for runs in progress).
    const conn = new Redis({ path: redis.path });
    const downAt = Number(await conn.get(keys.cronLast('forgiving')));
    conn.disconnect();
    // Down longer than the start-up grace: ticks older than it are missed ones.
    await new Promise((r) => setTimeout(r, STARTUP_GRACE_MS + 3_500));

    daemon = await startTestDaemon({ config, redisUrl: redis.url });
    const upAt = Date.now();
    // Only catch-up records carry missedTicks: exactly one per task, made at start-up.
    const after = (await daemon.store.list({ limit: 1000 })).filter((r) => r.missedTicks !== undefined);
    expect(after.map((r) => r.task).sort()).toEqual(['forgiving', 'strict']);

    const forgiving = after.find((r) => r.task === 'forgiving')!;
    // Missed: the ticks from the last claimed one to the grace before the start.
    const missedExpected = Math.floor((upAt - STARTUP_GRACE_MS - downAt) / 1000);
    expect(forgiving.missedTicks).toBeGreaterThanOrEqual(missedExpected - 1);
    expect(forgiving.missedTicks).toBeLessThanOrEqual(missedExpected + 2);
    const ended = await daemon.waitForEnd(forgiving.id, 90_000);
    expect(ended.status).toBe('succeeded');
    expect(ended.logTail).toContain(`caught up ${new Date(forgiving.scheduledAt!).toISOString()}`);

    const strict = after.find((r) => r.task === 'strict')!;
    expect(strict.status).toBe('skipped');
    expect(strict.reason).toMatch(
      /^catch-up window passed: \d+ tick\(s\) missed while no daemon ran, the latest at .*; catchup is off \(0s\)$/,
    );
    // The ticks of the grace are not missed: the timer fires them late, each its own run.
    const graceTicks = (await daemon.store.list({ task: 'strict', limit: 1000 })).filter(
      (r) => r.scheduledAt! > strict.scheduledAt! && r.scheduledAt! <= upAt - 1_000,
    );
    expect(graceTicks.length).toBeGreaterThanOrEqual(STARTUP_GRACE_MS / 1000 - 2);
    expect(graceTicks.filter((r) => r.status === 'skipped' || r.missedTicks !== undefined)).toEqual([]);
  }, 120_000);
});
