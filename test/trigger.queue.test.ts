import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/runs/types.js';
import { configFrom, removeClusterContainers, startTestDaemon, useDaemon, type TestDaemon } from './helpers/daemon.js';
import { freePort } from './helpers/process.js';
import { startRedisServer, startTestRedis, type RedisProcess } from './helpers/redis.js';

const PRODUCER = join(import.meta.dirname, 'fixtures', 'queue-producer.mjs');

interface ProducerLine {
  event: 'added' | 'progress' | 'completed' | 'failed' | 'timeout' | 'done';
  id: string;
  jobId?: string;
  returnvalue?: { runId: string; status: string; output?: unknown };
  failedReason?: string;
  progress?: { runId: string };
}

/** A plain BullMQ producer in a process of its own; resolves with every line it printed once it exits. */
function produce(spec: {
  connection: object;
  queue: string;
  prefix?: string;
  jobs: { id: string; data: unknown }[];
  timeoutMs?: number;
}): Promise<ProducerLine[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PRODUCER, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`producer exited with ${code}: ${err}`));
      resolve(
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as ProducerLine),
      );
    });
  });
}

const finished = (lines: ProducerLine[]) =>
  new Map(lines.filter((l) => ['completed', 'failed', 'timeout'].includes(l.event)).map((l) => [l.id, l]));

// A listing leaves payloads out (their own keys); these tests check them, so each run is read with it.
async function runsOf(daemon: TestDaemon, task: string): Promise<RunRecord[]> {
  const listed = await daemon.store.list({ task, limit: 500 });
  const runs = await daemon.store.getMany(
    listed.map((r) => r.id),
    { withPayload: true },
  );
  return runs.filter((r) => r !== undefined);
}

const YAML = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  bid-placed:
    command: [sh, -c, 'cat /runlet/payload.json > /runlet/output.json']
    queue: { name: bids }
  bid-checked:
    command: [sh, -c, 'echo "checking $RUNLET_PAYLOAD" >&2; exit 3']
    retries: { attempts: 1 }
    queue: { name: checks, concurrency: 5 }
`;

describe('jobs a BullMQ producer adds in another process', () => {
  const ctx = useDaemon(YAML, { stalledMs: 2000 });
  const connection = () => ({ path: ctx.redis.path });

  it('each job makes one run with its data as payload; the producer gets the run id and the output back', async () => {
    const jobs = Array.from({ length: 6 }, (_, i) => ({ id: `bid-${i}`, data: { bid: i, amount: 100 + i, bidder: `b${i}` } }));
    const lines = await produce({ connection: connection(), queue: 'bids', jobs });

    const results = finished(lines);
    const runs = await runsOf(ctx.daemon, 'bid-placed');
    expect(runs).toHaveLength(6);
    let echoed = 0;
    for (const job of jobs) {
      const line = results.get(job.id);
      expect(line?.event, JSON.stringify(line)).toBe('completed');
      const run = (await ctx.daemon.store.get(runs.find((r) => r.dedupeKey === `bid-placed:queue:bids:${job.id}`)!.id, {
        withLogs: true,
        withPayload: true,
      }))!;
      // The producer sees what the run recorded. (A record without output is tolerated only
      // because suites sharing one Docker engine remove each other's containers at teardown.)
      expect(line!.returnvalue).toEqual({ runId: run.id, status: 'succeeded', ...(run.output !== undefined && { output: job.data }) });
      if (run.output !== undefined) echoed++;
      expect(run).toMatchObject({ trigger: 'queue', status: 'succeeded', payload: job.data, cause: `job ${job.id} of queue bids` });
      // The run id reaches the producer as progress as soon as the run is recorded.
      expect(lines.filter((l) => l.event === 'progress' && l.id === job.id).map((l) => l.progress)).toContainEqual({ runId: run.id });
    }
    expect(echoed).toBeGreaterThan(0);
  });

  it("a job whose run fails fails at the producer with the run's error, and BullMQ does not retry it", async () => {
    const lines = await produce({ connection: connection(), queue: 'checks', jobs: [{ id: 'check-1', data: { bid: 7 } }] });
    const [run] = await runsOf(ctx.daemon, 'bid-checked');
    expect(run).toMatchObject({ status: 'failed', exitCode: 3, dead: true, payload: { bid: 7 } });
    const line = finished(lines).get('check-1');
    expect(line?.event).toBe('failed');
    expect(line?.failedReason).toMatch(new RegExp(`^run ${run!.id} ended failed`));
    // UnrecoverableError: one attempt at BullMQ's level, whatever the producer's job options say.
    const { Queue } = await import('bullmq');
    const queue = new Queue('checks', { connection: { ...connection(), maxRetriesPerRequest: null } });
    try {
      const job = await queue.getJob('check-1');
      expect(await job!.getState()).toBe('failed');
      expect(job!.attemptsMade).toBe(1);
    } finally {
      await queue.close();
    }
  });

  it('the same job id added twice makes one run (BullMQ ignores the second add)', async () => {
    const lines = await produce({
      connection: connection(),
      queue: 'bids',
      jobs: [
        { id: 'twice', data: { bid: 'first' } },
        { id: 'twice', data: { bid: 'second' } },
      ],
    });
    const runs = (await runsOf(ctx.daemon, 'bid-placed')).filter((r) => r.dedupeKey === 'bid-placed:queue:bids:twice');
    expect(runs).toHaveLength(1);
    expect(runs[0]!.payload).toEqual({ bid: 'first' });
    expect(lines.filter((l) => l.event === 'added').map((l) => l.jobId)).toEqual(['twice', 'twice']);
    expect(lines.filter((l) => l.event === 'completed').map((l) => l.returnvalue?.runId)).toEqual([runs[0]!.id]);
  });
});

describe('queues in another Redis, and one that refuses connections', () => {
  let runletRedis: Awaited<ReturnType<typeof startTestRedis>>;
  let queueRedis: Awaited<ReturnType<typeof startTestRedis>>;
  let daemon: TestDaemon;
  let latePort: number;
  let lateRedis: RedisProcess | undefined;

  beforeAll(async () => {
    [runletRedis, queueRedis] = await Promise.all([startTestRedis(), startTestRedis()]);
    const refused = `redis://127.0.0.1:${await freePort()}`;
    latePort = await freePort();
    const yaml = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  elsewhere:
    command: [sh, -c, 'cat /runlet/payload.json > /runlet/output.json']
    queue: { name: orders, redis: "unix://${queueRedis.path}", prefix: shop }
  unreachable:
    command: [sh, -c, 'exit 0']
    queue: { name: ghosts, redis: "${refused}" }
  late:
    command: [sh, -c, 'cat /runlet/payload.json > /runlet/output.json']
    queue: { name: later, redis: "redis://127.0.0.1:${latePort}" }
`;
    daemon = await startTestDaemon({ config: configFrom(yaml), redisUrl: runletRedis.url, stalledMs: 2000 });
  });
  afterAll(async () => {
    await daemon?.stop();
    if (daemon) await removeClusterContainers(daemon.identity.clusterId);
    await Promise.all([runletRedis?.stopAndClean(), queueRedis?.stopAndClean(), lateRedis?.stop()]);
  });

  it('a queue with redis: and prefix: of its own makes runs recorded in runlet’s Redis', async () => {
    const lines = await produce({
      connection: { path: queueRedis.path },
      queue: 'orders',
      prefix: 'shop',
      jobs: [{ id: 'o-1', data: { order: 1 } }],
    });
    const [run] = await runsOf(daemon, 'elsewhere');
    expect(finished(lines).get('o-1')?.returnvalue).toEqual({ runId: run!.id, status: 'succeeded', output: { order: 1 } });
  });

  it('a queue Redis that refuses connections: the daemon started, serves /healthz, and logged the problem', async () => {
    const res = await fetch(`${daemon.url}/healthz`);
    expect(res.status).toBe(200);
    const deadline = Date.now() + 10_000;
    const logged = () => daemon.logs.lines.find((l) => l.queue === 'ghosts' && l.level === 50);
    while (!logged() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(logged()).toMatchObject({ task: 'unreachable', msg: expect.stringContaining('cannot use its queue') });
    expect(JSON.stringify(logged())).toContain('ECONNREFUSED');
  });

  it('a queue Redis that was down at start: once it answers, its jobs make runs without a restart', async () => {
    // Down at first: the daemon logs it and keeps trying.
    const deadline = Date.now() + 10_000;
    const logged = () => daemon.logs.lines.find((l) => l.queue === 'later' && l.level === 50);
    while (!logged() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(logged()).toMatchObject({ task: 'late', msg: expect.stringContaining('cannot use its queue') });

    lateRedis = await startRedisServer({ port: latePort });
    const lines = await produce({
      connection: { host: '127.0.0.1', port: latePort },
      queue: 'later',
      jobs: [{ id: 'l-1', data: { late: true } }],
      timeoutMs: 30_000,
    });
    const [run] = await runsOf(daemon, 'late');
    expect(finished(lines).get('l-1')?.returnvalue).toEqual({ runId: run!.id, status: 'succeeded', output: { late: true } });
  });
});
