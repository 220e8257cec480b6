import Fastify from 'fastify';
import { get as httpGet, type ClientRequest } from 'node:http';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeFeed, liveRoutes } from '../src/http/live.js';
import { CHANGES_CHANNEL } from '../src/runs/keys.js';
import { configFrom, startTestDaemon, useDaemon, type TestDaemon } from './helpers/daemon.js';
import { until } from './helpers/until.js';

const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s, killGrace: 1s }
tasks:
  greet: { command: [sh, -c, 'echo hi'] }
`;
const TOKEN = 'live-token';
const ctx = useDaemon(CONFIG, { token: TOKEN, host: '127.0.0.1' });

interface SseEvent {
  event: string;
  data: string;
}

/** A server-sent-events reader over fetch, as the dashboard reads it (headers, no EventSource). */
function openEvents(url: string, token = TOKEN) {
  const abort = new AbortController();
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters = new Set<() => void>();
  const done = (async () => {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
    if (!res.ok || !res.body) return res.status;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line);
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (data) events.push({ event, data });
          for (const w of waiters) w();
        }
      }
    } catch {
      // aborted by the test
    }
    return res.status;
  })();
  /** Resolves once an event matching `match` has arrived (already, or later). */
  const waitFor = (match: (e: SseEvent) => boolean, timeoutMs = 20_000): Promise<SseEvent> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = events.find(match);
        if (!found) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(events)}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  const runEvents = (id: string) =>
    events
      .filter((e) => e.event === 'run')
      .map((e) => JSON.parse(e.data))
      .filter((e) => e.id === id);
  return { events, comments, done, waitFor, runEvents, ready: () => waitFor((e) => e.event === 'ready'), close: () => abort.abort() };
}

const numsub = async (redis: Redis): Promise<number> => Number(((await redis.pubsub('NUMSUB', CHANGES_CHANNEL)) as [string, number])[1]);

describe('GET /api/events', () => {
  let probe: Redis;
  beforeAll(() => {
    probe = new Redis({ path: ctx.redis.path });
  });
  afterAll(() => probe?.disconnect());

  it('requires the bearer token', async () => {
    const res = await fetch(`${ctx.daemon.url}/api/events`);
    expect(res.status).toBe(401);
    const wrong = openEvents(`${ctx.daemon.url}/api/events`, 'nope');
    expect(await wrong.done).toBe(401);
  });

  it('delivers every status of a run on this daemon, in order', async () => {
    const sse = openEvents(`${ctx.daemon.url}/api/events`);
    try {
      await sse.ready();
      const res = await fetch(`${ctx.daemon.url}/api/tasks/greet/runs`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      const { id } = (await res.json()) as { id: string };
      await sse.waitFor((e) => e.event === 'run' && JSON.parse(e.data).id === id && JSON.parse(e.data).status === 'succeeded');
      const statuses = sse.runEvents(id).map((e) => e.status);
      expect(statuses).toEqual(['queued', 'starting', 'running', 'succeeded']);
      expect(sse.runEvents(id)[0]).toEqual({ id, status: 'queued', task: 'greet' });
    } finally {
      sse.close();
    }
  });

  it('delivers runs created through another daemon on the same Redis', async () => {
    const other: TestDaemon = await startTestDaemon({
      config: configFrom(CONFIG),
      redisUrl: ctx.redis.url,
      node: 'other-node',
      token: TOKEN,
      host: '127.0.0.1',
    });
    const sse = openEvents(`${ctx.daemon.url}/api/events`);
    try {
      await sse.ready();
      const res = await fetch(`${other.url}/api/tasks/greet/runs`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      const { id } = (await res.json()) as { id: string };
      await sse.waitFor((e) => e.event === 'run' && JSON.parse(e.data).id === id && JSON.parse(e.data).status === 'succeeded');
      expect(sse.runEvents(id).map((e) => e.status)).toContain('queued');
    } finally {
      sse.close();
      await other.stop();
    }
  });

  it('shares one Redis subscription among clients and releases it when they leave', async () => {
    expect(await numsub(probe)).toBe(0);
    const clients = [1, 2, 3].map(() => openEvents(`${ctx.daemon.url}/api/events`));
    await Promise.all(clients.map((c) => c.ready()));
    // Three viewers, one subscriber connection on this daemon.
    expect(await numsub(probe)).toBe(1);
    clients[0].close();
    clients[1].close();
    await new Promise((r) => setTimeout(r, 200));
    expect(await numsub(probe)).toBe(1);
    clients[2].close();
    // The server saw every client go: the last one's leaving unsubscribes.
    await until('the condition', async () => (await numsub(probe)) === 0);
    await Promise.all(clients.map((c) => c.done));
  });
});

describe('the live plugin on its own', () => {
  it('sends a heartbeat comment, ends open streams on close, and drops clients that go', async () => {
    const subscriber = new Redis({ path: ctx.redis.path });
    const feed = new ChangeFeed(subscriber, pino({ level: 'silent' }));
    const app = Fastify();
    await app.register(liveRoutes, { feed, heartbeatMs: 50 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/events`;
    const sse = openEvents(url);
    await sse.ready();
    await until('the condition', async () => sse.comments.some((c) => c.startsWith(': ping')), 2000);
    expect(feed.size).toBe(1);

    const publisher = new Redis({ path: ctx.redis.path });
    await publisher.publish(CHANGES_CHANNEL, 'RUN1 running some task');
    await sse.waitFor((e) => e.event === 'run');
    expect(JSON.parse(sse.events.find((e) => e.event === 'run')!.data)).toEqual({ id: 'RUN1', status: 'running', task: 'some task' });
    publisher.disconnect();

    // node:http rather than fetch here: undici opens a spare connection when a request is
    // aborted, and an idle connection that never sent a request holds server.close() for
    // seconds, which would blur the check below.
    const gone = await new Promise<ClientRequest>((resolve, reject) => {
      const req = httpGet(url, { agent: false }, (res) => res.once('data', () => resolve(req)));
      req.on('error', reject);
      setTimeout(() => reject(new Error('the second client got no first event within 10 s')), 10_000).unref();
    });
    expect(feed.size).toBe(2);
    gone.destroy();
    await until('the condition', async () => feed.size === 1);

    // close() must not wait forever on a stream that never ends by itself.
    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await sse.done).toBe(200);
    await feed.stop();
  });
});
