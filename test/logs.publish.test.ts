import { Redis } from 'ioredis';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../src/runs/keys.js';
import { PUBLISH_MAX_BYTES, parseLogMessage } from '../src/runs/log-stream.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// Live output costs Redis nothing while nobody follows, is gathered and bounded while someone
// does, and never holds up the heartbeat.
const YAML = `defaults: { image: runlet/busybox:local, memory: 32m, timeout: 60s }
tasks:
  chatty: { command: [sh, -c, 'i=0; while [ $i -lt 400 ]; do echo "line $i"; i=$((i+1)); done; sleep 1; echo done'] }
  flood:
    command:
      - sh
      - -c
      - |
        head -c 100000000 /dev/zero | tr '\\0' 'x' | fold -w 1000
        echo done
`;
/** Short, so a heartbeat is due every second and a late one shows within the flood. */
const LEASE_MS = 3000;
/** What each connection to Redis may send per second: a network link, not a local socket. */
const LINK_BYTES_PER_S = 1024 * 1024;

/**
 * A TCP link to the test's Redis (its unix socket) on which each connection sends at most
 * LINK_BYTES_PER_S towards Redis, as over a network: on the local socket Redis takes a flood
 * as fast as the engine streams it, and nothing queues behind it. Per connection, so what it
 * shows is one connection's queue: commands waiting behind the ones sent before them.
 */
async function throttledLink(path: string): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ path });
    sockets.add(client).add(upstream);
    upstream.pipe(client);
    client.on('data', (data: Buffer) => {
      client.pause();
      upstream.write(data);
      setTimeout(() => client.resume(), (data.length / LINK_BYTES_PER_S) * 1000);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('live log publishing', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let daemon: TestDaemon;
  let probe: Redis;
  let watcher: Redis;
  let link: Awaited<ReturnType<typeof throttledLink>>;
  /** Every message on any run's log channel, by channel: a pattern subscription, which PUBSUB NUMSUB does not count. */
  const seen = new Map<string, Buffer[]>();

  beforeAll(async () => {
    redis = await startTestRedis();
    link = await throttledLink(redis.path);
    daemon = await startTestDaemon({ config: configFrom(YAML), redisUrl: link.url, node: 'node-p', stalledMs: LEASE_MS });
    probe = new Redis({ path: redis.path });
    watcher = new Redis({ path: redis.path });
    watcher.on('pmessageBuffer', (_p: Buffer, channel: Buffer, message: Buffer) => {
      const list = seen.get(channel.toString()) ?? [];
      list.push(message);
      seen.set(channel.toString(), list);
    });
    await watcher.psubscribe(keys.logChannel('*'));
  });
  afterAll(async () => {
    watcher?.disconnect();
    probe?.disconnect();
    await daemon?.stop();
    if (daemon) await removeClusterContainers(daemon.identity.clusterId);
    await link?.close();
    await redis?.stopAndClean();
  });

  it('a run nobody follows publishes nothing, and its log is still kept', async () => {
    const { runId } = await daemon.submit({ task: 'chatty', trigger: 'manual', dedupeKey: 'chatty:manual:alone' });
    const run = await daemon.waitForEnd(runId);
    expect(run.status, run.reason).toBe('succeeded');
    expect(run.logTail).toContain('line 399\ndone\n');
    expect(seen.get(keys.logChannel(runId)) ?? []).toHaveLength(0);
  });

  it('a followed run is published in gathered, bounded messages, and the follower gets every line', async () => {
    const { runId } = await daemon.submit({ task: 'chatty', trigger: 'manual', dedupeKey: 'chatty:manual:followed' });
    const res = await fetch(`${daemon.url}/api/runs/${runId}/logs?follow=1`);
    const text = await res.text();
    expect(text).toBe(`${Array.from({ length: 400 }, (_, i) => `line ${i}\n`).join('')}done\n`);
    const messages = (seen.get(keys.logChannel(runId)) ?? []).map((m) => parseLogMessage(m));
    const chunks = messages.filter((m) => m?.kind === 'chunk');
    // 401 lines, written as they come: published gathered, far fewer messages than lines.
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.length).toBeLessThan(100);
    expect(messages.every((m) => m !== undefined)).toBe(true);
  });

  it("a task flooding its stdout, followed, does not hold up the heartbeat's renewal", async () => {
    const beat = keys.daemon(daemon.identity.daemonId);
    const { runId } = await daemon.submit({ task: 'flood', trigger: 'manual', dedupeKey: 'flood:manual:1' });
    await daemon.events.once('run:started', (e) => e.runId === runId);
    const follower = new AbortController();
    const following = fetch(`${daemon.url}/api/runs/${runId}/logs?follow=1`, { signal: follower.signal })
      .then(async (r) => {
        const reader = r.body!.getReader();
        let bytes = 0;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return bytes;
          bytes += value.length;
        }
      })
      .catch(() => -1);
    // A beat is due every LEASE_MS / 3: one beat late is allowed (a busy machine), two are not.
    const floor = LEASE_MS - 2 * (LEASE_MS / 3);
    const ttls: number[] = [];
    let ended = false;
    const end = daemon.waitForEnd(runId).then((r) => ((ended = true), r));
    // Sampled while the flood lasts (bounded: behind a clogged connection the run's end waits too).
    for (let i = 0; !ended && i < 600; i++) {
      ttls.push(await probe.pttl(beat));
      await new Promise((r) => setTimeout(r, 50));
    }
    const low = ttls.filter((t) => t < floor);
    expect(
      low,
      `heartbeat TTLs (ms) seen during the flood, lowest first: ${[...ttls]
        .sort((a, b) => a - b)
        .slice(0, 10)
        .join(', ')}`,
    ).toEqual([]);
    const run = await end;
    // The follow ends with the run; the abort only keeps a stuck one from outliving the test.
    const timer = setTimeout(() => follower.abort(), 15_000);
    const followed = await following;
    clearTimeout(timer);
    expect(run.status, run.reason).toBe('succeeded');
    expect(ttls.length).toBeGreaterThan(20);
    // Published while followed, but never a message over the bound.
    const chunks = (seen.get(keys.logChannel(runId)) ?? []).map((m) => parseLogMessage(m)).filter((m) => m?.kind === 'chunk');
    expect(chunks.length).toBeGreaterThan(0);
    for (const c of chunks) expect(c!.kind === 'chunk' && c!.bytes.length).toBeLessThanOrEqual(PUBLISH_MAX_BYTES);
    expect(followed).not.toBe(0);
  });
});
