import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../src/runs/store.js';
import { isTerminal } from '../src/runs/types.js';
import { removeClusterContainers } from './helpers/daemon.js';
import { freePort, spawnDaemon, type DaemonProcess } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

// Redis emptied while no daemon runs (a Redis restarted without its append-only file while
// the node's daemon was down), and a run's container still running: the next daemon must
// come back under the same cluster id (the one the container is labelled with, kept in its
// data dir), find the container, record the run again from its labels and record its end.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 60s }
tasks:
  long:
    command:
      - sh
      - -c
      - sleep 8; echo '{"rows":7}' > /runlet/output.json; echo finished under the next daemon; exit 3
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let client: Redis;
let store: RunStore;
let configFile: string;
let dataDir: string;
const procs: DaemonProcess[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis({ path: redis.path });
  store = new RunStore(client);
  const dir = mkdtempSync(join(tmpdir(), 'runlet-emptied-restart-'));
  configFile = join(dir, 'runlet.yaml');
  writeFileSync(configFile, CONFIG);
  dataDir = join(dir, 'data');
});
afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  const clusterId = await client.get('runlet:cluster-id');
  if (clusterId) await removeClusterContainers(clusterId);
  client.disconnect();
  await redis?.stopAndClean();
});

async function startOne(): Promise<{ p: DaemonProcess; url: string }> {
  const port = await freePort();
  const p = spawnDaemon(configFile, { REDIS_URL: redis.url, RUNLET_PORT: String(port), RUNLET_NODE: 'emptied-node', RUNLET_DATA: dataDir });
  procs.push(p);
  await p.ready;
  return { p, url: `http://127.0.0.1:${port}` };
}

describe('Redis emptied while the daemon was down, a run still running', () => {
  it('the next daemon keeps the cluster id, adopts the container, records the run again from its labels and then its outcome', async () => {
    const a = await startOne();
    const clusterId = await client.get('runlet:cluster-id');
    const { id } = (await (await fetch(`${a.url}/api/tasks/long/runs`, { method: 'POST' })).json()) as { id: string };
    await until('the run to be running', async () => (await store.get(id))?.status === 'running');
    a.p.child.kill('SIGKILL');
    await new Promise((r) => a.p.child.once('exit', r));
    await client.flushall();

    const b = await startOne();
    expect(await client.get('runlet:cluster-id')).toBe(clusterId);
    const ended = await until('the run to be recorded again and end', async () => {
      const r = await store.get(id, { withLogs: true });
      return r && isTerminal(r.status) && r;
    });
    expect(ended).toMatchObject({ task: 'long', trigger: 'manual', status: 'failed', exitCode: 3, output: '{"rows":7}\n' });
    expect(ended.logTail).toContain('finished under the next daemon');
    const said = b.p.output();
    expect(said).toMatch(/redis had no cluster id .*put back the one this node last ran under/);
    expect(said.match(/redis lost the record of a run whose container was running/g)).toHaveLength(1);
    // And the container is gone.
    const left = await new Docker().listContainers({ all: true, filters: { label: [`runlet.run=${id}`] } });
    expect(left).toHaveLength(0);
  });
});
