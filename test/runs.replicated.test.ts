import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicaAcks, type ReplicaAnswer } from '../src/lib/replicas.js';
import { keys } from '../src/runs/keys.js';
import { RunStore } from '../src/runs/store.js';
import { MOVES } from '../src/runs/types.js';
import { startRedisServer, startTestRedis, type RedisProcess } from './helpers/redis.js';
import { until } from './helpers/until.js';

// Behind Sentinel, a write the master applied may be gone after a failover (replication is
// asynchronous). The writes a caller acts on next wait for a replica's ack; when the answer
// is that the master changed meanwhile, they are made again. Here the failover is played by
// the test inside the ask: it removes the write (the new master never got it), or changes
// what another writer did meanwhile, and then answers "unknown". Then ReplicaAcks on a real
// master with a replica, and on one without.

let server: Awaited<ReturnType<typeof startTestRedis>>;
let redis: Redis;
/** What the next ask does before answering; then every ask answers `acked`. */
let failover: (() => Promise<void>) | undefined;
let asks = 0;
let store: RunStore;

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis({ path: server.path });
  const replicas = {
    ask: async (): Promise<ReplicaAnswer> => {
      asks++;
      const f = failover;
      failover = undefined;
      if (!f) return 'acked';
      await f();
      return 'unknown';
    },
  };
  store = new RunStore(redis, { replicas });
});
afterAll(async () => {
  redis.disconnect();
  await server.stopAndClean();
});

const request = (n: string) => ({ task: 't', trigger: 'manual' as const, dedupeKey: `t:manual:${n}` });

describe('writes behind Sentinel: made again when the master changed while asking', () => {
  it('a creation the new master never got is made again, under the same id', async () => {
    failover = async () => void (await redis.flushall());
    const { runId, created } = await store.create(request('lost'));
    expect(created).toBe(true);
    expect(await store.runIdForDedupeKey('t:manual:lost')).toBe(runId);
    expect((await store.get(runId))?.status).toBe('queued');
  });

  it('a creation that did survive is not made twice', async () => {
    failover = async () => undefined;
    const before = await redis.zcard(keys.allRuns());
    const { runId, created } = await store.create(request('kept'));
    expect(created).toBe(true);
    expect(await redis.zcard(keys.allRuns())).toBe(before + 1);
    expect((await store.get(runId))?.transitions).toHaveLength(1);
  });

  it('a claim the new master never got is made again: the container may start', async () => {
    const { runId } = await store.create(request('claim-lost'));
    failover = async () => void (await redis.multi().hset(keys.run(runId), 'status', 'queued').hdel(keys.run(runId), 'claim').exec());
    expect(await store.claim(runId, { attempt: 1, token: 'mine' })).toBe(true);
    expect(await redis.hmget(keys.run(runId), 'status', 'claim')).toEqual(['starting', 'mine']);
  });

  it('a claim lost while another claimant won on the new master is refused: no second container', async () => {
    const { runId } = await store.create(request('claim-taken'));
    const other = new RunStore(redis);
    failover = async () => {
      await redis.multi().hset(keys.run(runId), 'status', 'queued').hdel(keys.run(runId), 'claim').exec();
      expect(await other.claim(runId, { attempt: 1, token: 'theirs' })).toBe(true);
    };
    expect(await store.claim(runId, { attempt: 1, token: 'mine' })).toBe(false);
    expect(await redis.hget(keys.run(runId), 'claim')).toBe('theirs');
  });

  it("an attempt's end the new master never got is recorded again, once, with its ended-runs entry", async () => {
    const { runId } = await store.create(request('end'));
    await store.claim(runId, { attempt: 1, token: 'mine' });
    const entries = async () => (await redis.xrange(keys.ended(), '-', '+')).filter(([, f]) => f[1] === runId).length;
    const end = () =>
      store.endAttempt(runId, 'succeeded', {
        from: MOVES.endAttempt.from,
        attempt: 1,
        entry: { attempt: 1, status: 'succeeded', finishedAt: Date.now() },
        fields: { exitCode: 0 },
      });
    // Lost: the run is back at `starting` on the new master, and its ended entry is gone.
    failover = async () => {
      await redis.hset(keys.run(runId), 'status', 'starting');
      await redis.del(keys.attempts(runId));
      const ids = (await redis.xrange(keys.ended(), '-', '+')).filter(([, f]) => f[1] === runId).map(([id]) => id);
      if (ids.length) await redis.xdel(keys.ended(), ...ids);
    };
    expect(await end()).toBe(true);
    expect((await store.get(runId))?.status).toBe('succeeded');
    expect(await entries()).toBe(1);
    // Survived: asked again after a change of master, nothing is written twice.
    failover = async () => undefined;
    expect(await end()).toBe(false);
    expect(await entries()).toBe(1);
    expect((await store.get(runId))?.attempts).toHaveLength(1);
  });

  it('asks only after a write that applied', async () => {
    const { runId } = await store.create(request('refused'));
    const before = asks;
    expect(await store.transition(runId, 'running', { from: ['starting'] })).toBe(false);
    expect(asks).toBe(before);
  });
});

describe('ReplicaAcks on real servers', () => {
  const servers: RedisProcess[] = [];
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => void logs.push(l) });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
  });

  it('acked with a replica in sync; unacked (said once) without one; unknown when the connection changed server meanwhile', async () => {
    const master = await startRedisServer();
    const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const alone = await startRedisServer();
    servers.push(master, replica, alone);
    const onMaster = new Redis(master.port, '127.0.0.1').on('error', () => undefined);
    const onReplica = new Redis(replica.port, '127.0.0.1').on('error', () => undefined);
    await until('the replica in sync', async () => /master_link_status:up/.test(await onReplica.info('replication')));
    onReplica.disconnect();
    const acks = new ReplicaAcks(onMaster, keys.replicaAck(), logger);
    // In sync, the replica acks; on a loaded machine one ask may still time out first.
    await until('the replica to ack a write', async () => (await acks.ask()) === 'acked', 20_000, 100);

    const onAlone = new Redis(alone.port, '127.0.0.1').on('error', () => undefined);
    const none = new ReplicaAcks(onAlone, keys.replicaAck(), logger, 200);
    const saidBefore = logs.filter((l) => l.includes('no replica acknowledged')).length;
    expect(await none.ask()).toBe('unacked');
    expect(await none.ask()).toBe('unacked');
    expect(logs.filter((l) => l.includes('no replica acknowledged')).length - saidBefore).toBe(1);

    // The connection drops and comes back while an ask is out: whoever answers, it may be
    // another server. (On the server without a replica, so the WAIT is still out when it drops.)
    const waiting = new ReplicaAcks(onAlone, keys.replicaAck(), logger, 3000);
    const asked = waiting.ask();
    await new Promise((r) => setTimeout(r, 200));
    onAlone.disconnect(true);
    expect(await asked).toBe('unknown');
    await until('the replica to ack again', async () => (await acks.ask()) === 'acked', 20_000, 100);
    onMaster.disconnect();
    onAlone.disconnect();
  });
});
