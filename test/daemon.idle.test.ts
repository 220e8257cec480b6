import { Redis } from 'ioredis';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeClusterContainers } from './helpers/daemon.js';
import { freePort, spawnDaemon, type DaemonProcess } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';

// Waiting runs cost nothing: with its pool full, a daemon holding 100 queued runs does no
// work until room frees (no polling loop). Measured as the daemon process's CPU time over
// a few seconds, against the wall time.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 60s }
pools:
  one: { concurrency: 1 }
tasks:
  hold:  { pool: one, command: [sleep, "30"] }
  queued: { pool: one, concurrency: 5, command: [echo, finally] }
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let client: Redis;
let daemon: DaemonProcess;
let port: number;

const cpuSeconds = (pid: number): number => {
  // utime and stime, fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis({ path: redis.path });
  const dir = mkdtempSync(join(tmpdir(), 'runlet-idle-'));
  writeFileSync(join(dir, 'runlet.yaml'), CONFIG);
  port = await freePort();
  daemon = spawnDaemon(join(dir, 'runlet.yaml'), { REDIS_URL: redis.url, RUNLET_PORT: String(port), RUNLET_NODE: 'idle' });
  await daemon.ready;
});
afterAll(async () => {
  daemon?.child.kill('SIGKILL');
  const clusterId = await client?.get('runlet:cluster-id');
  if (clusterId) await removeClusterContainers(clusterId);
  client?.disconnect();
  await redis?.stopAndClean();
});

describe('an idle daemon with waiting runs', () => {
  it('uses almost no CPU while 100 runs wait for room', async () => {
    const post = (task: string) =>
      fetch(`http://127.0.0.1:${port}/api/tasks/${task}/runs`, { method: 'POST' }).then((r) => r.json() as Promise<{ id: string }>);
    const hold = await post('hold');
    for (let i = 0; i < 50 && (await client.hget(`runlet:run:${hold.id}`, 'status')) !== 'running'; i++)
      await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 100; i++) await post('queued');
    await new Promise((r) => setTimeout(r, 1000)); // let the posts settle

    const pid = daemon.child.pid!;
    const cpu0 = cpuSeconds(pid);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 5000));
    const share = (cpuSeconds(pid) - cpu0) / ((Date.now() - t0) / 1000);

    const queued = await client.zcard('runlet:task:queued:runs');
    expect(queued).toBe(100);
    const statuses = await Promise.all(
      (await client.zrange('runlet:task:queued:runs', 0, -1)).map((id) => client.hget(`runlet:run:${id}`, 'status')),
    );
    expect(statuses.every((s) => s === 'queued')).toBe(true);
    // A polling loop would show here; the heartbeat and lock renewals are a few ms a second.
    console.log(`idle daemon CPU with 100 waiting runs: ${(share * 100).toFixed(2)}% of one core`);
    expect(share).toBeLessThan(0.01);
  });
});
