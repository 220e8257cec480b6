import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../src/runs/store.js';
import { isTerminal, type RunRecord } from '../src/runs/types.js';
import { removeClusterContainers } from './helpers/daemon.js';
import { freePort, spawnDaemon, type DaemonProcess } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';

// A daemon killed with SIGKILL leaves its container behind; the next daemon on the node
// must settle it: record the outcome and remove the container.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 60s }
tasks:
  quick: { command: [sh, -c, "sleep 1; echo finished while nobody watched"] }
  # 10 s: long enough that the next daemon, started on a loaded machine, still finds it running.
  long:  { command: [sh, -c, "sleep 10; echo finished under the new daemon"] }
  second: { command: [sh, -c, '[ "$RUNLET_ATTEMPT" -ge 2 ] || exit 1; sleep 4; echo "attempt $RUNLET_ATTEMPT finished under the new daemon"'], retries: { attempts: 2, delay: 300ms } }
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let client: Redis;
let store: RunStore;
let configFile: string;
const docker = new Docker();
const procs: DaemonProcess[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis({ path: redis.path });
  store = new RunStore(client);
  const dir = mkdtempSync(join(tmpdir(), 'runlet-restart-'));
  configFile = join(dir, 'runlet.yaml');
  writeFileSync(configFile, CONFIG);
});
afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  const clusterId = await client.get('runlet:cluster-id');
  if (clusterId) await removeClusterContainers(clusterId);
  client.disconnect();
  await redis?.stopAndClean();
});

async function startOne(port: number): Promise<DaemonProcess> {
  const p = spawnDaemon(configFile, {
    REDIS_URL: redis.url,
    RUNLET_PORT: String(port),
    RUNLET_NODE: 'restart-node',
    RUNLET_DATA: redis.dir,
    RUNLET_LOG_LEVEL: 'debug',
  });
  procs.push(p);
  await p.ready;
  return p;
}

async function until(runId: string, pred: (r: RunRecord) => boolean, timeoutMs = 30_000): Promise<RunRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await store.get(runId, { withLogs: true });
    if (r && pred(r)) return r;
    if (Date.now() > deadline) throw new Error(`run ${runId} stayed ${r?.status}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

const containersOf = async (runId: string) => docker.listContainers({ all: true, filters: { label: [`runlet.run=${runId}`] } });

async function killedMidRun(task: string, port: number, attempt = 1): Promise<string> {
  const a = await startOne(port);
  const res = await fetch(`http://127.0.0.1:${port}/api/tasks/${task}/runs`, { method: 'POST' });
  const { id } = (await res.json()) as { id: string };
  await until(id, (r) => r.status === 'running' && (r.attempt ?? 1) === attempt);
  a.child.kill('SIGKILL');
  await new Promise((r) => a.child.once('exit', r));
  expect(await containersOf(id)).toHaveLength(1);
  return id;
}

describe('a daemon killed mid-run', () => {
  it('leaves a container that finished meanwhile; the next start records its outcome and removes it', async () => {
    const port = await freePort();
    const id = await killedMidRun('quick', port);
    // Let the container end while no daemon is running.
    await docker.getContainer((await containersOf(id))[0].Id).wait();
    expect((await store.get(id))?.status).toBe('running');
    const b = await startOne(port);
    const rec = await until(id, (r) => isTerminal(r.status));
    expect(rec.status).toBe('succeeded');
    expect(rec.logTail).toContain('finished while nobody watched');
    expect(await containersOf(id)).toHaveLength(0);
    b.child.kill('SIGTERM');
    await new Promise((r) => b.child.once('exit', r));
  });

  it('leaves a running container; the next start adopts it and records how it ended', async () => {
    const port = await freePort();
    const id = await killedMidRun('long', port);
    const b = await startOne(port);
    expect(b.output()).toContain('adopting a running container');
    const rec = await until(id, (r) => isTerminal(r.status));
    expect(rec.status).toBe('succeeded');
    expect(rec.logTail).toContain('finished under the new daemon');
    expect(rec.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'succeeded']);
    await until(id, () => true);
    const deadline = Date.now() + 5000;
    while ((await containersOf(id)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await containersOf(id)).toHaveLength(0);
    b.child.kill('SIGTERM');
    await new Promise((r) => b.child.once('exit', r));
  });

  it('while a retried run is on its second attempt: the next start records that container as attempt 2, its log position too', async () => {
    const port = await freePort();
    const id = await killedMidRun('second', port, 2);
    const b = await startOne(port);
    const rec = await until(id, (r) => isTerminal(r.status));
    expect(rec).toMatchObject({ status: 'succeeded', attempt: 2 });
    expect(rec.attempts.map((a) => [a.attempt, a.status])).toEqual([
      [1, 'failed'],
      [2, 'succeeded'],
    ]);
    expect(rec.logTail).toContain('attempt 2 finished under the new daemon');
    // Where the stored tail stands (attempt and byte offset) is what `runlet logs -f` joins
    // live output to: marked as attempt 1, a follower would take attempt 2's bytes for attempt 1's.
    expect((await store.logSnapshot(id))?.attempt).toBe(2);
    b.child.kill('SIGTERM');
    await new Promise((r) => b.child.once('exit', r));
  });
});
