import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/runs/types.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// jitter delays each tick's run by a random amount up to the setting, to spread load.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 10s }
tasks:
  spread: { schedule: "* * * * * *", jitter: 2s, overlap: allow, concurrency: 1, command: [echo, spread] }
  prompt: { schedule: "* * * * * *", overlap: allow, concurrency: 1, command: [echo, prompt] }
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let daemon: TestDaemon;
let runs: RunRecord[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  daemon = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: redis.url, shutdownGraceMs: 3000 });
  // At least 6 s of ticks, and longer while a loaded machine has not yet finished three runs
  // of each task (the test below needs them).
  const started = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    runs = (await daemon.store.list({ limit: 1000 })).filter((r) => r.status === 'succeeded');
    const enough = ['spread', 'prompt'].every((t) => runs.filter((r) => r.task === t).length >= 3);
    if ((enough && Date.now() - started >= 6000) || Date.now() - started > 25_000) break;
  }
}, 40_000);
afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await redis?.stopAndClean();
});

const delays = (task: string) =>
  runs.filter((r) => r.task === task).map((r) => r.transitions.find((t) => t.status === 'starting')!.at - r.scheduledAt!);

describe('jitter', () => {
  it('spreads the start of each tick over the jitter window; without it runs start at once', () => {
    const spread = delays('spread');
    const prompt = delays('prompt');
    expect(spread.length).toBeGreaterThanOrEqual(3);
    expect(prompt.length).toBeGreaterThanOrEqual(3);
    // Against the same machine's un-jittered baseline: spread out, yet within the window.
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(avg(spread)).toBeGreaterThan(avg(prompt) + 200);
    expect(Math.max(...spread)).toBeLessThan(2000 + Math.max(...prompt) + 500);
  });
});
