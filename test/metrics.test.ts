import { Redis } from 'ioredis';
import parsePrometheus, { type PromFamily, type PromSample } from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

const YAML = `defaults: { image: runlet/busybox:local, memory: 64m, timeout: 30s }
pools:
  solo: { concurrency: 1 }
tasks:
  ok:    { command: [sh, -c, 'echo fine; sleep 0.4'] }
  bad:   { command: [sh, -c, 'echo nope; exit 2'] }
  hold:  { pool: solo, command: [sh, -c, 'sleep 2'] }
  hold2: { pool: solo, command: [sh, -c, 'echo second'] }
  ticks: { schedule: "* * * * *", catchup: 1h, command: [sh, -c, 'echo caught up'] }
`;

async function scrape(d: TestDaemon): Promise<PromFamily[]> {
  const res = await fetch(`${d.url}/metrics`);
  expect(res.status).toBe(200);
  // The parser folds a histogram's _bucket/_sum/_count into one sample only when it has no
  // labels, and drops labelled ones; without their TYPE line they parse as plain series.
  const text = await res.text();
  return parsePrometheus(text.replace(/^# TYPE \S+ histogram$/gm, ''));
}

/** A labelled histogram's count, sum and cumulative buckets, from its plain series. */
function histogram(f: PromFamily[], name: string, labels: Record<string, string>) {
  return {
    count: value(f, `${name}_count`, labels),
    sum: value(f, `${name}_sum`, labels),
    bucket: (le: string) => value(f, `${name}_bucket`, { ...labels, le }),
  };
}

/** The sample of `name` whose labels include `labels`, if any. */
function sample(families: PromFamily[], name: string, labels: Record<string, string> = {}): PromSample | undefined {
  // prom-client writes a histogram's series label set by label set, so the plain series of
  // one name come back as several families: look in all of them.
  return families
    .filter((f) => f.name === name)
    .flatMap((f) => f.metrics)
    .find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
}

const value = (f: PromFamily[], name: string, labels: Record<string, string> = {}) => Number(sample(f, name, labels)?.value ?? 0);

describe('GET /metrics moves as runs happen', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let d: TestDaemon;
  const missedSince = Date.now() - 5 * 60_000 - 30_000;

  beforeAll(async () => {
    redis = await startTestRedis();
    // As if the last daemon stopped five and a half minutes ago: five ticks were missed.
    const seed = new Redis({ path: redis.path });
    await seed.set('runlet:cron:ticks:last', String(Math.floor(missedSince / 60_000) * 60_000));
    seed.disconnect();
    d = await startTestDaemon({ config: configFrom(YAML), redisUrl: redis.url });
  });
  afterAll(async () => {
    await d?.stop();
    if (d) await removeClusterContainers(d.identity.clusterId);
    await redis?.stopAndClean();
  });

  it('counts succeeded and failed runs, their duration, queue wait and usage', async () => {
    const before = await scrape(d);
    expect(value(before, 'runlet_runs_finished_total', { task: 'ok', status: 'succeeded' })).toBe(0);
    // The counters move on run:finished, emitted just after the record says so: await both.
    const ended = (task: string) => d.events.once('run:finished', (e) => e.task === task);
    const endings = Promise.all([ended('ok'), ended('bad')]);
    const ok = await d.submit({ task: 'ok', trigger: 'manual', dedupeKey: 'ok:manual:1' });
    await d.submit({ task: 'bad', trigger: 'manual', dedupeKey: 'bad:manual:1' });
    await endings;
    const okRun = await d.waitForEnd(ok.runId);
    const after = await scrape(d);
    expect(value(after, 'runlet_runs_finished_total', { task: 'ok', status: 'succeeded' })).toBe(1);
    expect(value(after, 'runlet_runs_finished_total', { task: 'bad', status: 'failed' })).toBe(1);

    const duration = histogram(after, 'runlet_run_duration_seconds', { task: 'ok', status: 'succeeded' });
    expect(duration.count).toBe(1);
    expect(duration.sum).toBeGreaterThan(0.3);
    expect(duration.sum).toBeLessThan(10);
    expect(duration.bucket('0.1')).toBe(0);
    expect(duration.bucket('3600')).toBe(1);
    expect(histogram(after, 'runlet_run_duration_seconds', { task: 'bad', status: 'failed' }).count).toBe(1);

    const wait = histogram(after, 'runlet_run_queue_wait_seconds', { task: 'ok' });
    expect(wait.count).toBe(1);
    expect(sample(after, 'runlet_run_queue_wait_seconds_sum', { task: 'ok' })).toBeDefined();
    expect(wait.sum).toBeLessThan(30);
    expect(wait.bucket('3600')).toBe(1);

    const cs = value(after, 'runlet_container_seconds_total', { task: 'ok' });
    expect(cs).toBeGreaterThan(0.3);
    expect(cs).toBeCloseTo(okRun.usage!.containerSeconds, 5);
    // Memory in bytes × seconds: 64 MiB for cs seconds, and the run record's gbSeconds in bytes.
    const byteSeconds = value(after, 'runlet_memory_limit_byte_seconds_total', { task: 'ok' });
    expect(byteSeconds).toBeCloseTo(64 * 2 ** 20 * cs, -4);
    expect(byteSeconds).toBe(okRun.usage!.gbSeconds * 2 ** 30);
  });

  it('counts trigger events as accepted or duplicate', async () => {
    const before = await scrape(d);
    const first = await d.submit({ task: 'ok', trigger: 'manual', dedupeKey: 'ok:manual:dup' });
    const again = await d.submit({ task: 'ok', trigger: 'manual', dedupeKey: 'ok:manual:dup' });
    expect(again).toMatchObject({ runId: first.runId, created: false });
    const after = await scrape(d);
    const moved = (outcome: string) =>
      value(after, 'runlet_trigger_events_total', { task: 'ok', trigger: 'manual', outcome }) -
      value(before, 'runlet_trigger_events_total', { task: 'ok', trigger: 'manual', outcome });
    expect(moved('accepted')).toBe(1);
    expect(moved('duplicate')).toBe(1);
    await d.waitForEnd(first.runId);
    // Rejections are emitted by the intake (webhooks): the event reaches the counter, and
    // a task name nobody configured shares one label value.
    d.events.emit('trigger:event', { task: 'no-such-task', trigger: 'webhook', outcome: 'rejected', reason: 'unknown_task' });
    const rejected = await scrape(d);
    expect(value(rejected, 'runlet_trigger_rejections_total', { task: '(unknown)', trigger: 'webhook', reason: 'unknown_task' })).toBe(1);
    expect(value(rejected, 'runlet_trigger_events_total', { task: '(unknown)', trigger: 'webhook', outcome: 'rejected' })).toBe(1);
  });

  it('counts the cron ticks catch-up found missed', async () => {
    const f = await scrape(d);
    expect(value(f, 'runlet_cron_missed_ticks_total', { task: 'ticks', outcome: 'caught_up' })).toBeGreaterThanOrEqual(5);
    expect(value(f, 'runlet_trigger_events_total', { task: 'ticks', trigger: 'cron', outcome: 'accepted' })).toBeGreaterThanOrEqual(1);
  });

  it('shows running and queued gauges while a run holds its pool, and counts the admission wait', async () => {
    const before = await scrape(d);
    const waitsBefore = value(before, 'runlet_admission_waits_total', { task: 'hold2', pool: 'solo', reason: 'pool_concurrency' });
    const hold = await d.submit({ task: 'hold', trigger: 'manual', dedupeKey: 'hold:manual:1' });
    await d.events.once('run:started', (e) => e.runId === hold.runId);
    const hold2 = await d.submit({ task: 'hold2', trigger: 'manual', dedupeKey: 'hold2:manual:1' });
    const during = await scrape(d);
    expect(value(during, 'runlet_runs_running', { task: 'hold', pool: 'solo' })).toBe(1);
    expect(value(during, 'runlet_runs_queued', { task: 'hold2', pool: 'solo' })).toBe(1);
    expect(value(during, 'runlet_runs_running', { task: 'hold2', pool: 'solo' })).toBe(0);

    await d.waitForEnd(hold2.runId);
    // Counted when the run that waited is taken: while the pool's worker was paused, no node
    // knew which runs waited behind it.
    expect(
      value(await scrape(d), 'runlet_admission_waits_total', { task: 'hold2', pool: 'solo', reason: 'pool_concurrency' }),
    ).toBeGreaterThan(waitsBefore);
    // The job completes just after the record ends.
    for (let i = 0; i < 40 && value(await scrape(d), 'runlet_runs_running', { task: 'hold2', pool: 'solo' }) > 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    const after = await scrape(d);
    expect(value(after, 'runlet_runs_running', { task: 'hold', pool: 'solo' })).toBe(0);
    expect(value(after, 'runlet_runs_queued', { task: 'hold2', pool: 'solo' })).toBe(0);
    expect(sample(after, 'runlet_process_process_resident_memory_bytes')).toBeDefined();
  });
});
