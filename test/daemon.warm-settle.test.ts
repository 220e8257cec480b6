import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { LABEL_CLUSTER, LABEL_TASK, LABEL_WARM } from '../src/runtime/labels.js';
import { docker } from './helpers/docker.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { freePort, spawnDaemon, type DaemonProcess } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

// A daemon killed with SIGKILL leaves its idle warm containers behind (their shims end when
// the attach closes, the containers stay); the next start on the node removes them.

const YAML = `
tasks:
  kept-warm:
    image: runlet/node:local
    command: [node, -e, "1"]
    memory: 64m
    warm: 2
`;

async function warmIds(clusterId: string): Promise<string[]> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL_CLUSTER}=${clusterId}`, `${LABEL_TASK}=kept-warm`, LABEL_WARM] },
  });
  return list.map((c) => c.Id).sort();
}

describe('start-up settling of warm containers', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>> | undefined;
  let proc: DaemonProcess | undefined;
  let next: TestDaemon | undefined;
  let clusterId: string | undefined;

  afterAll(async () => {
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
    await next?.stop();
    if (clusterId) await removeClusterContainers(clusterId);
    await redis?.stopAndClean();
  });

  it('removes the idle warm containers a SIGKILLed daemon of this node left', async () => {
    redis = await startTestRedis();
    const file = join(mkdtempSync(join(tmpdir(), 'runlet-warm-settle-')), 'runlet.yaml');
    writeFileSync(file, YAML);
    proc = spawnDaemon(file, { REDIS_URL: redis.url, RUNLET_PORT: String(await freePort()), RUNLET_NODE: 'warm-node' });
    await proc.ready;
    const r = new Redis(redis.url);
    clusterId = (await r.get('runlet:cluster-id')) ?? undefined;
    r.disconnect();
    expect(clusterId).toBeTruthy();
    await until('two warm containers of the spawned daemon', async () => (await warmIds(clusterId!)).length === 2, 30_000, 250);
    const left = await warmIds(clusterId!);

    proc.child.kill('SIGKILL');
    await new Promise((res) => proc!.child.once('exit', res));
    // Still there: nobody removed them.
    expect(await warmIds(clusterId!)).toEqual(left);

    next = await startTestDaemon({ config: configFrom(YAML), redisUrl: redis.url, node: 'warm-node' });
    // Settled before the new daemon makes its own: none of the old ones remain.
    const now = await warmIds(clusterId!);
    for (const id of left) expect(now).not.toContain(id);
    expect(next.logs.lines.some((l) => l.msg === 'removed warm containers left by a previous process' && l.removed === 2)).toBe(true);
    await until('the new daemon’s own two', async () => (await warmIds(clusterId!)).length === 2, 30_000, 250);
  });
});
