import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCli } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';
import { logChannel } from '../src/runs/log-stream.js';

// Ten lines, one every 200 ms: about 2 s of a run whose output arrives while it runs.
const LINES = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`);
const TICKER = `for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i"; sleep 0.2; done`;

const A_YAML = `defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  ticker: { concurrency: 4, command: [sh, -c, '${TICKER}'] }
  fails:  { command: [sh, -c, 'echo about to fail; sleep 0.5; echo bye; exit 3'] }
  slow:   { command: [sh, -c, 'echo started; sleep 30'] }
`;
// Daemon B has no worker for `ticker`: its runs can only run on A.
const B_YAML = `defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  other: { command: [sh, -c, 'echo other'] }
`;

type Arrival = { at: number; text: string };

/** Reads a follow stream to its end, noting when each piece arrived. */
async function follow(
  base: string,
  runId: string,
  signal?: AbortSignal,
): Promise<{ arrivals: Arrival[]; text: string; endedAt: number; contentType: string | null }> {
  const res = await fetch(`${base}/api/runs/${runId}/logs?follow=1`, { signal });
  expect(res.status).toBe(200);
  const arrivals: Arrival[] = [];
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    arrivals.push({ at: Date.now(), text: decoder.decode(value, { stream: true }) });
  }
  return { arrivals, text: arrivals.map((a) => a.text).join(''), endedAt: Date.now(), contentType: res.headers.get('content-type') };
}

const expected = LINES.map((l) => `${l}\n`).join('');

describe('GET /api/runs/:id/logs?follow=1 and runlet logs -f', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let a: TestDaemon;
  let b: TestDaemon;
  let probe: Redis;

  beforeAll(async () => {
    redis = await startTestRedis();
    a = await startTestDaemon({ config: configFrom(A_YAML), redisUrl: redis.url, node: 'node-a' });
    b = await startTestDaemon({ config: configFrom(B_YAML), redisUrl: redis.url, node: 'node-b' });
    probe = new Redis({ path: redis.path });
  });
  afterAll(async () => {
    probe?.disconnect();
    await b?.stop();
    await a?.stop();
    if (a) await removeClusterContainers(a.identity.clusterId);
    await redis?.stopAndClean();
  });

  it('streams lines as they are written, each once and in order, and closes when the run ends', async () => {
    const { runId } = await a.submit({ task: 'ticker', trigger: 'manual', dedupeKey: 'ticker:manual:live-1' });
    const got = await follow(a.url, runId);
    const run = await a.waitForEnd(runId);
    expect(run.status, run.reason).toBe('succeeded');
    expect(got.contentType).toBe('text/plain; charset=utf-8');
    expect(got.text).toBe(expected);
    // Live, not at the end: the first line arrived while the run still had ~1.8 s to go.
    const first = got.arrivals.find((x) => x.text.includes('line 1'))!;
    expect(run.finishedAt! - first.at).toBeGreaterThan(1000);
    expect(got.arrivals.length).toBeGreaterThan(3);
    // Closed once the run ended, not long after.
    expect(got.endedAt).toBeGreaterThanOrEqual(run.finishedAt! - 50);
    expect(got.endedAt - run.finishedAt!).toBeLessThan(5000);
  });

  it('followers that join mid-run (between tail writes, too) get the whole output with no gap or duplicate', async () => {
    const { runId } = await a.submit({ task: 'ticker', trigger: 'manual', dedupeKey: 'ticker:manual:live-2' });
    await a.events.once('run:started', (e) => e.runId === runId);
    // Staggered so some join just after a chunk was published and before the tail that has it.
    const followers: Promise<Awaited<ReturnType<typeof follow>>>[] = [];
    for (let i = 0; i < 8; i++) {
      followers.push(follow(a.url, runId));
      await new Promise((r) => setTimeout(r, 170));
    }
    const results = await Promise.all(followers);
    for (const r of results) expect(r.text).toBe(expected);
  });

  it('follows through daemon B a run that daemon A runs (B has no worker for the task)', async () => {
    const { runId } = await b.submit({ task: 'ticker', trigger: 'manual', dedupeKey: 'ticker:manual:live-3' });
    const got = await follow(b.url, runId);
    const run = await a.waitForEnd(runId);
    expect(run.node).toBe('node-a');
    expect(got.text).toBe(expected);
    const first = got.arrivals.find((x) => x.text.includes('line 1'))!;
    expect(run.finishedAt! - first.at).toBeGreaterThan(1000);
  });

  it('a run that already ended: the stored tail, then the response ends', async () => {
    const { runId } = await a.submit({ task: 'fails', trigger: 'manual', dedupeKey: 'fails:manual:ended' });
    await a.waitForEnd(runId);
    const got = await follow(b.url, runId);
    expect(got.text).toBe('about to fail\nbye\n');
  });

  it('a client that leaves is unsubscribed: the channel has no subscriber again', async () => {
    const { runId } = await a.submit({ task: 'slow', trigger: 'manual', dedupeKey: 'slow:manual:leave' });
    await a.events.once('run:started', (e) => e.runId === runId);
    const numsub = async () => Number(((await probe.pubsub('NUMSUB', logChannel(runId))) as [string, number])[1]);
    const leave = new AbortController();
    const reading = follow(b.url, runId, leave.signal).catch((err: Error) => err);
    for (let i = 0; i < 50 && (await numsub()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await numsub()).toBe(1);
    leave.abort();
    await reading;
    for (let i = 0; i < 50 && (await numsub()) !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await numsub()).toBe(0);
    await fetch(`${a.url}/api/runs/${runId}/cancel`, { method: 'POST' });
    await a.waitForEnd(runId);
  });

  it('an unknown run is a 404', async () => {
    const res = await fetch(`${a.url}/api/runs/01NOSUCHRUN0000000000000000/logs?follow=1`);
    expect(res.status).toBe(404);
  });

  it("runlet logs -f (built CLI) prints the lines as the run goes and exits with the run's outcome", async () => {
    const ok = await a.submit({ task: 'ticker', trigger: 'manual', dedupeKey: 'ticker:manual:cli' });
    const res = await runCli(['logs', '-f', ok.runId], { RUNLET_URL: b.url });
    expect(res.stdout).toBe(expected);
    expect(res.code).toBe(0);
    const bad = await a.submit({ task: 'fails', trigger: 'manual', dedupeKey: 'fails:manual:cli' });
    const failed = await runCli(['logs', '-f', bad.runId], { RUNLET_URL: a.url });
    expect(failed.stdout).toBe('about to fail\nbye\n');
    expect(failed.code).toBe(3);
  });
});
