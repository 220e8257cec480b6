import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeView } from '../src/ops/nodes.js';
import { manualRequest } from '../src/triggers/manual.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { freePort, runCli, spawnDaemon, type DaemonProcess } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

// Two nodes on one Redis (one engine, told apart by their node names): node-b a daemon
// process of its own, which the test kills with SIGKILL; node-a in this process. The node
// budget (64m) takes one `big` (48m) or one `small` (32m) beside nothing bigger than 16m, so
// with `big` running on node-b, `small` can only be taken by node-a: each node runs one
// known run. Both sleep until the test ends.
const YAML = `
defaults: { image: runlet/busybox:local, timeout: 2m, killGrace: 1s }
node: { memory: 64m }
tasks:
  big:   { memory: 48m, command: [sleep, "120"] }
  small: { memory: 32m, command: [sleep, "120"] }
`;
const FILE = join(mkdtempSync(join(tmpdir(), 'runlet-nodes-')), 'runlet.yaml');
writeFileSync(FILE, YAML);
const TOKEN = 'nodes-token';
const MiB = 1024 * 1024;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let a: TestDaemon;
let b: DaemonProcess;
let bUrl: string;

const getA = async <T>(path: string, token: string | null = TOKEN): Promise<{ status: number; body: T }> => {
  const res = await fetch(`${a.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: (await res.json()) as T };
};
const nodes = async (): Promise<Record<string, NodeView>> =>
  Object.fromEntries((await getA<{ nodes: NodeView[] }>('/api/nodes')).body.nodes.map((n) => [n.name, n]));
const runStatus = async (id: string) => (await getA<{ status: string; node: string }>(`/api/runs/${id}`)).body;

beforeAll(async () => {
  redis = await startTestRedis();
  // A short lease: node-b's heartbeat, once it is killed, lapses after 3 s (the default is 30 s).
  const env = { REDIS_URL: redis.url, RUNLET_PORT: String(await freePort()), RUNLET_NODE: 'node-b', RUNLET_STALLED_MS: '3000' };
  bUrl = `http://127.0.0.1:${env.RUNLET_PORT}`;
  b = spawnDaemon(FILE, env);
  await b.ready;
});
afterAll(async () => {
  if (b && b.child.exitCode === null && b.child.signalCode === null) {
    b.child.kill('SIGKILL');
    await new Promise((r) => b.child.once('exit', r));
  }
  await a?.stop();
  const r = new Redis({ path: redis.path });
  const clusterId = await r.get('runlet:cluster-id');
  r.disconnect();
  if (clusterId) await removeClusterContainers(clusterId);
  await redis?.stopAndClean();
});

describe('GET /api/nodes with two nodes, one killed', () => {
  let bigId: string;
  let smallId: string;
  let seenLive: string;

  it('shows each live node with the runs it holds and its memory in use against its budget', async () => {
    bigId = ((await (await fetch(`${bUrl}/api/tasks/big/runs`, { method: 'POST' })).json()) as { id: string }).id;
    await until('big to run on node-b', async () => (await (await fetch(`${bUrl}/api/runs/${bigId}`)).json()).status === 'running', 30_000);

    a = await startTestDaemon({ config: configFrom(YAML), redisUrl: redis.url, node: 'node-a', token: TOKEN, shutdownGraceMs: 500 });
    smallId = (await a.submit(manualRequest('small', undefined))).runId;
    await until('small to run', async () => (await runStatus(smallId)).status === 'running', 30_000);
    expect((await runStatus(smallId)).node).toBe('node-a');

    // Like the rest of the ops API: the token is required.
    expect((await getA('/api/nodes', null)).status).toBe(401);

    // The load travels with the heartbeat (every 5 s): wait for a beat after both runs began.
    const seen = await until(
      'both nodes to report their run',
      async () => ((n) => n['node-a']?.running?.count === 1 && n['node-b']?.running?.count === 1 && n)(await nodes()),
      30_000,
    );
    expect(Object.keys(seen).sort()).toEqual(['node-a', 'node-b']);
    expect(seen['node-a']).toMatchObject({
      state: 'live',
      running: { count: 1, runs: [{ id: smallId, task: 'small', pool: 'default', memoryBytes: 32 * MiB }] },
      memory: { inUseBytes: 32 * MiB, budgetBytes: 64 * MiB },
      pools: [{ name: 'default', runs: 1, concurrency: 8 }],
      forgetAt: null,
    });
    expect(seen['node-a'].daemons.map((d) => d.id)).toEqual([a.identity.daemonId]);
    expect(seen['node-b']).toMatchObject({
      state: 'live',
      running: { count: 1, runs: [{ id: bigId, task: 'big' }] },
      memory: { inUseBytes: 48 * MiB, budgetBytes: 64 * MiB },
      pools: [{ name: 'default', runs: 1, concurrency: 8 }],
    });
    expect(seen['node-b'].daemons[0].pid).toBe(b.child.pid);
    seenLive = seen['node-b'].lastHeartbeatAt;

    // The dashboard reads the same list from /api/status.
    const status = await getA<{ nodes: NodeView[] }>('/api/status');
    expect(status.body.nodes.map((n) => [n.name, n.state])).toEqual([
      ['node-a', 'live'],
      ['node-b', 'live'],
    ]);
  });

  it('a node killed with SIGKILL shows as gone once its heartbeat expires, with when it was last seen and what it ran', async () => {
    b.child.kill('SIGKILL');
    await new Promise((r) => b.child.once('exit', r));
    const killedAt = Date.now();

    // Its heartbeat key lives out its lease (3 s here): until then it is live, as far as anyone knows.
    const gone = await until('node-b to be gone', async () => ((n) => n.state === 'gone' && n)((await nodes())['node-b']), 45_000, 250);
    expect(Date.parse(gone.lastHeartbeatAt)).toBeGreaterThanOrEqual(Date.parse(seenLive));
    expect(Date.parse(gone.lastHeartbeatAt)).toBeLessThanOrEqual(killedAt);
    expect(gone.sinceMs).toBeGreaterThan(0);
    expect(Date.parse(gone.forgetAt!)).toBe(Date.parse(gone.lastHeartbeatAt) + 24 * 3600_000);
    // What it held when last seen: the run that is now at risk.
    expect(gone.running?.runs.map((r) => r.id)).toEqual([bigId]);

    const all = await nodes();
    expect(all['node-a']).toMatchObject({ state: 'live', running: { count: 1 } });
    // Live nodes first, then the gone ones.
    expect((await getA<{ nodes: NodeView[] }>('/api/nodes')).body.nodes.map((n) => n.name)).toEqual(['node-a', 'node-b']);

    const cli = await runCli(['status', '-c', FILE], { RUNLET_URL: a.url, RUNLET_TOKEN: TOKEN });
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/node-a {2}live, heartbeat .* ago, 1 run, memory 32 MiB of 64 MiB/);
    expect(cli.stdout).toContain(`node-b  GONE, last seen ${gone.lastHeartbeatAt}`);
    expect(cli.stdout).toContain(`${bigId}  big`);
  });

  it('forgets a gone node after the 24 h retention', async () => {
    const r = new Redis({ path: redis.path });
    try {
      const beat = (node: string, agoMs: number) => JSON.stringify({ node, daemon: `${node}-1-abc`, at: Date.now() - agoMs });
      await r.hset(
        'runlet:nodes',
        'node-yesterday',
        beat('node-yesterday', 23 * 3600_000),
        'node-last-week',
        beat('node-last-week', 7 * 86400_000),
      );
      const all = await nodes();
      expect(all['node-yesterday']?.state).toBe('gone');
      expect(all['node-last-week']).toBeUndefined();
      expect(await r.hexists('runlet:nodes', 'node-last-week')).toBe(0);
      expect(await r.hexists('runlet:nodes', 'node-yesterday')).toBe(1);
    } finally {
      r.disconnect();
    }
  });
});
