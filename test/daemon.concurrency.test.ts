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

// A task's concurrency is cluster-wide: two daemon processes on one Redis, 20 requests at
// once for a `concurrency: 2` task, and never more than 2 of its containers running.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  pair: { concurrency: 2, command: [sh, -c, "sleep 0.5; echo done"] }
`;

const docker = new Docker();
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let client: Redis;
const procs: DaemonProcess[] = [];
const ports: number[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis({ path: redis.path });
  const dir = mkdtempSync(join(tmpdir(), 'runlet-conc-'));
  const file = join(dir, 'runlet.yaml');
  writeFileSync(file, CONFIG);
  for (const node of ['conc-a', 'conc-b']) {
    const port = await freePort();
    ports.push(port);
    procs.push(spawnDaemon(file, { REDIS_URL: redis.url, RUNLET_PORT: String(port), RUNLET_NODE: node }));
  }
  await Promise.all(procs.map((p) => p.ready));
});
afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  const clusterId = await client?.get('runlet:cluster-id');
  if (clusterId) await removeClusterContainers(clusterId);
  client?.disconnect();
  await redis?.stopAndClean();
});

describe('cluster-wide task concurrency', () => {
  it('20 simultaneous requests through two daemons never run more than 2 containers at once', async () => {
    const clusterId = (await client.get('runlet:cluster-id'))!;
    let maxRunning = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const running = await docker.listContainers({
          filters: { label: [`runlet.cluster=${clusterId}`, 'runlet.task=pair'], status: ['running'] },
        });
        maxRunning = Math.max(maxRunning, running.length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const ids = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const res = await fetch(`http://127.0.0.1:${ports[i % 2]}/api/tasks/pair/runs`, { method: 'POST' });
        return ((await res.json()) as { id: string }).id;
      }),
    );
    const store = new RunStore(client);
    const deadline = Date.now() + 90_000;
    let runs = await store.getMany(ids);
    while (!runs.every((r) => r && isTerminal(r.status)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      runs = await store.getMany(ids);
    }
    sampling = false;
    await sampler;

    expect(runs.map((r) => r?.status)).toEqual(Array(20).fill('succeeded'));
    expect(maxRunning).toBe(2);
    // Never more than 2 overlapping in the records either.
    const spans = runs.map((r) => [r!.startedAt!, r!.finishedAt!] as const);
    const overlapAt = (t: number) => spans.filter(([s, f]) => s <= t && t < f).length;
    expect(Math.max(...spans.map(([s]) => overlapAt(s)))).toBeLessThanOrEqual(2);
  });
});
