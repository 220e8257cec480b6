import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { isTerminal } from '../src/runs/types.js';
import { removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { freePort, spawnDaemon, type DaemonProcess } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';

// Two nodes on one Redis. Node A dies (SIGKILL) mid-run; its job's lock lapses and node B
// gets the job again. B cannot reach A's engine, so the run is `lost` — until A comes back,
// settles the container it left, and the real outcome replaces `lost`.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 60s }
tasks:
  work: { command: [sh, -c, "sleep 4; echo done on the node that died"] }
`;
const STALLED_MS = 1500;

const dir = mkdtempSync(join(tmpdir(), 'runlet-lost-'));
const file = join(dir, 'runlet.yaml');
writeFileSync(file, CONFIG);
const docker = new Docker();
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let nodeB: TestDaemon;
const procs: DaemonProcess[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  await nodeB?.stop();
  if (nodeB) await removeClusterContainers(nodeB.identity.clusterId);
  await redis?.stopAndClean();
});

async function startNodeA(port: number): Promise<DaemonProcess> {
  const p = spawnDaemon(file, {
    REDIS_URL: redis.url,
    RUNLET_PORT: String(port),
    RUNLET_NODE: 'node-a',
    RUNLET_STALLED_MS: String(STALLED_MS),
  });
  procs.push(p);
  await p.ready;
  return p;
}

describe('a node that dies mid-run', () => {
  it('its run becomes lost on another node, then gets its real outcome when the node returns', async () => {
    const port = await freePort();
    const a = await startNodeA(port);
    const { id } = (await (await fetch(`http://127.0.0.1:${port}/api/tasks/work/runs`, { method: 'POST' })).json()) as { id: string };

    // Node B joins only once node A runs the job.
    const peek = new Redis({ path: redis.path });
    for (let i = 0; i < 100 && (await peek.hget(`runlet:run:${id}`, 'status')) !== 'running'; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await peek.hget(`runlet:run:${id}`, 'node')).toBe('node-a');
    peek.disconnect();
    nodeB = await startTestDaemon({ config: parseConfig(CONFIG, file, {}), redisUrl: redis.url, node: 'node-b', stalledMs: STALLED_MS });
    a.child.kill('SIGKILL');
    await new Promise((r) => a.child.once('exit', r));

    const lost = await nodeB.waitForEnd(id, 20_000);
    expect(lost.status).toBe('lost');
    expect(lost.reason).toBe('the daemon running it on node "node-a" stopped answering while the run was running');
    // B never touched A's container: it is still there for A to settle.
    const left = await docker.listContainers({ all: true, filters: { label: [`runlet.run=${id}`] } });
    expect(left).toHaveLength(1);

    await startNodeA(port);
    let rec = await nodeB.store.get(id, { withLogs: true });
    for (let i = 0; i < 150 && rec?.status === 'lost'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      rec = await nodeB.store.get(id, { withLogs: true });
    }
    expect(rec && isTerminal(rec.status)).toBe(true);
    expect(rec?.status).toBe('succeeded');
    expect(rec?.logTail).toContain('done on the node that died');
    expect(rec?.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'lost', 'succeeded']);
    expect(await docker.listContainers({ all: true, filters: { label: [`runlet.run=${id}`] } })).toHaveLength(0);
  });
});
