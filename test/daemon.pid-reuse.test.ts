import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { DEFAULT_LEASE_MS } from '../src/dispatch/identity.js';
import { keys } from '../src/runs/keys.js';
import { RunStore } from '../src/runs/store.js';
import { removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { freePort, spawnDaemon, type DaemonProcess } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';

// In the shipped image node is PID 1 and `restart: unless-stopped` keeps the hostname, so a
// restarted daemon finds its predecessor's heartbeat (not yet expired) with its own host and
// its own pid. Here the predecessor is a real daemon process, killed mid-run; its heartbeat
// is then rewritten with the pid of this test process, which is what the restarted daemon
// (in-process below) would read. It must take that heartbeat for a dead process's and adopt
// the container at once, not treat it as its own and leave it running unowned.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 60s }
tasks:
  long: { command: [sh, -c, "sleep 5; echo finished under the daemon that took the pid"] }
`;
const NODE = 'reuse-node';

const dir = mkdtempSync(join(tmpdir(), 'runlet-pid-reuse-'));
const file = join(dir, 'runlet.yaml');
writeFileSync(file, CONFIG);
const docker = new Docker();
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let client: Redis;
let store: RunStore;
let successor: TestDaemon | undefined;
const procs: DaemonProcess[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis({ path: redis.path });
  store = new RunStore(client);
});
afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  await successor?.stop();
  const clusterId = await client.get(keys.clusterId());
  if (clusterId) await removeClusterContainers(clusterId);
  client.disconnect();
  await redis?.stopAndClean();
});

const containersOf = async (runId: string) => docker.listContainers({ all: true, filters: { label: [`runlet.run=${runId}`] } });

describe('a daemon restarted with its predecessor’s pid (PID 1 in the image)', () => {
  it('adopts the running container its predecessor left, without waiting for the heartbeat to expire', async () => {
    const port = await freePort();
    const predecessor = spawnDaemon(file, { REDIS_URL: redis.url, RUNLET_PORT: String(port), RUNLET_NODE: NODE });
    procs.push(predecessor);
    await predecessor.ready;
    const { id } = (await (await fetch(`http://127.0.0.1:${port}/api/tasks/long/runs`, { method: 'POST' })).json()) as { id: string };
    for (let i = 0; i < 100 && (await store.get(id))?.status !== 'running'; i++) await new Promise((r) => setTimeout(r, 100));
    predecessor.child.kill('SIGKILL');
    await new Promise((r) => predecessor.child.once('exit', r));
    const run = await store.get(id);
    expect(run?.status).toBe('running');
    expect(await containersOf(id)).toHaveLength(1);

    // The predecessor's last heartbeat, as a restarted PID-1 daemon reads it: our pid.
    const beatKey = keys.daemon(run?.daemon as string);
    const beat = JSON.parse((await client.get(beatKey)) as string) as Record<string, unknown>;
    await client.set(beatKey, JSON.stringify({ ...beat, pid: process.pid }), 'PX', DEFAULT_LEASE_MS);

    const restartedAt = Date.now();
    successor = await startTestDaemon({ config: parseConfig(CONFIG, file, {}), redisUrl: redis.url, node: NODE });
    expect(successor.logs.lines.some((l) => l.msg === 'adopting a running container left by a previous process' && l.runId === id)).toBe(
      true,
    );
    const rec = await successor.waitForEnd(id, DEFAULT_LEASE_MS);
    expect(rec.status).toBe('succeeded');
    expect(rec.logTail).toContain('finished under the daemon that took the pid');
    expect(rec.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'succeeded']);
    // Settled while the predecessor's heartbeat still stood: the boot id in it, not its expiry, decided.
    expect(Date.now() - restartedAt).toBeLessThan(DEFAULT_LEASE_MS);
    expect(await client.pttl(beatKey)).toBeGreaterThan(0);
    expect(await containersOf(id)).toHaveLength(0);
  });
});
