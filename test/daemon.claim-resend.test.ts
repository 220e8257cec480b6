import { Redis } from 'ioredis';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom, containersOfRun, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

// Issue 13, "fenced runs": the daemon's connection drops after the claim script ran in Redis
// but before its reply arrived. ioredis resends the command on the new connection; the run
// is already `starting`, and the resend must still be the claimant's win, or the run stays
// `starting` with nobody to start it. A TCP proxy between the daemon and Redis cuts exactly
// that connection at exactly that moment.
const CONFIG = `
tasks:
  work: { image: runlet/busybox:local, memory: 16m, timeout: 30s, command: [sh, -c, "echo ran once"] }
`;

/** The claim as it crosses the wire: a script call moving a run from `queued` to `starting`. */
function isClaim(chunk: Buffer): boolean {
  const text = chunk.toString('latin1');
  return /\r\nevalsha\r\n|\r\neval\r\n/i.test(text) && text.includes('\r\nstarting\r\n') && text.includes('\r\nqueued\r\n');
}

/**
 * Forwards every connection to Redis, except that the first connection to send the claim
 * gets no reply from then on: once `ranInRedis` says the script has run, both of its sockets
 * are destroyed, as a network would drop them.
 */
function cuttingProxy(
  redisPath: string,
  ranInRedis: () => Promise<boolean>,
): Promise<{ server: Server; port: number; cut: Promise<void> }> {
  let armed = false;
  let cutDone!: () => void;
  const cut = new Promise<void>((r) => (cutDone = r));
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = netConnect(redisPath);
    sockets.add(client).add(upstream);
    let holding = false;
    client.on('data', (d) => {
      if (!armed && isClaim(d)) {
        armed = true;
        holding = true;
        void until('the claim to run in redis', ranInRedis, 10_000, 5).then(() => {
          client.destroy();
          upstream.destroy();
          cutDone();
        });
      }
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!holding) client.write(d);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      resolve({ server, port: typeof addr === 'object' && addr ? addr.port : 0, cut });
    }),
  );
}

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let peek: Redis;
let proxy: Awaited<ReturnType<typeof cuttingProxy>>;
let daemon: TestDaemon;

beforeAll(async () => {
  redis = await startTestRedis();
  peek = new Redis({ path: redis.path });
  // The claim has run when some run is `starting` (this file makes one run).
  proxy = await cuttingProxy(redis.path, async () => {
    const ids = await peek.zrange('runlet:runs', 0, -1);
    for (const id of ids) if ((await peek.hget(`runlet:run:${id}`, 'status')) === 'starting') return true;
    return false;
  });
  daemon = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: `redis://127.0.0.1:${proxy.port}` });
});
afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  proxy?.server.close();
  peek?.disconnect();
  await redis?.stopAndClean();
});

describe('a connection dropped between the claim and its reply', () => {
  it('the resent claim is the same claimant\'s: the run runs once and ends, not stranded in "starting"', async () => {
    const started: string[] = [];
    daemon.events.on('run:started', (e) => started.push(e.containerId));
    const res = await fetch(`${daemon.url}/api/tasks/work/runs`, { method: 'POST' });
    const { id } = (await res.json()) as { id: string };
    await proxy.cut;

    const rec = await until(
      'the run to end',
      async () => {
        const r = await peek.hget(`runlet:run:${id}`, 'status');
        return r !== 'queued' && r !== 'starting' && r !== 'running' && daemon.store.get(id, { withLogs: true });
      },
      20_000,
    );
    expect(rec).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(rec!.logTail).toContain('ran once');
    expect(rec!.transitions.map((t) => t.status)).toEqual(['queued', 'starting', 'running', 'succeeded']);
    expect(rec!.attempts).toHaveLength(1);
    expect(started).toHaveLength(1);
    expect(await containersOfRun(id)).toBe(0);
  });
});
