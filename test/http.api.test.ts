import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s, killGrace: 1s }
tasks:
  greet:  { command: [sh, -c, 'echo "hello $RUNLET_PAYLOAD"'] }
  linger: { command: [sleep, "30"] }
`;
const TOKEN = 's3cret-token';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let daemon: TestDaemon;
const auth = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  redis = await startTestRedis();
  daemon = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: redis.url, token: TOKEN, host: '127.0.0.1' });
});
afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await redis?.stopAndClean();
});

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${daemon.url}${path}`, { ...init, headers: { ...auth, ...(init.headers ?? {}) } });

describe('ops API over a real socket', () => {
  it('a manual run over HTTP: 202 with an id, then the record shows it succeeded with its output', async () => {
    const res = await api('/api/tasks/greet/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ops' }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    await daemon.waitForEnd(id);
    const rec = (await (await api(`/api/runs/${id}`)).json()) as Record<string, unknown>;
    expect(rec).toMatchObject({
      id,
      task: 'greet',
      trigger: 'manual',
      status: 'succeeded',
      exitCode: 0,
      reason: null,
      payload: { name: 'ops' },
    });
    for (const key of ['transitions', 'usage', 'logTail']) expect(rec).toHaveProperty(key);
    expect(rec.logTail).toContain('hello {"name":"ops"}');
    const logs = await api(`/api/runs/${id}/logs`);
    expect(logs.headers.get('content-type')).toMatch(/text\/plain/);
    expect(await logs.text()).toContain('hello {"name":"ops"}');
    const list = (await (await api('/api/runs?task=greet&status=succeeded')).json()) as { runs: Array<{ id: string }> };
    expect(list.runs.map((r) => r.id)).toContain(id);
  });

  it('an Idempotency-Key makes one run however often the request is repeated', async () => {
    const send = () =>
      api('/api/tasks/greet/runs', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'order-7731' },
        body: JSON.stringify({ n: 1 }),
      });
    const first = await send();
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    const again = await Promise.all([send(), send(), send()]);
    for (const res of again) {
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ id, created: false });
    }
    const rec = await daemon.waitForEnd(id);
    expect(rec.cause).toBe('Idempotency-Key order-7731');
    const runs = await daemon.store.list({ task: 'greet', limit: 100 });
    expect(runs.filter((r) => r.dedupeKey === 'greet:manual:key:order-7731')).toHaveLength(1);
    const tooLong = await api('/api/tasks/greet/runs', { method: 'POST', headers: { 'idempotency-key': 'x'.repeat(201) } });
    expect(tooLong.status).toBe(400);
  });

  it('a manual run without a body has no payload', async () => {
    const res = await api('/api/tasks/greet/runs', { method: 'POST' });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect((await daemon.waitForEnd(id)).payload).toBeUndefined();
  });

  it('cancels a running run: SIGTERM, then the record says cancelled', async () => {
    const { id } = (await (await api('/api/tasks/linger/runs', { method: 'POST' })).json()) as { id: string };
    await daemon.events.once('run:started', (e) => e.runId === id);
    const res = await api(`/api/runs/${id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(202);
    const rec = await daemon.waitForEnd(id);
    expect(rec.status).toBe('cancelled');
    const again = await api(`/api/runs/${id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
  });

  it('requires the bearer token under /api, but not for /healthz', async () => {
    expect((await fetch(`${daemon.url}/api/tasks`)).status).toBe(401);
    expect((await fetch(`${daemon.url}/api/tasks`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const health = await fetch(`${daemon.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', checks: { redis: { ok: true }, docker: { ok: true } } });
  });

  it('answers bad requests with clear errors and queues nothing', async () => {
    const before = (await (await api('/api/runs?limit=1000')).json()) as { runs: unknown[] };
    const unknown = await api('/api/tasks/gret/runs', { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe('no task named "gret" (did you mean "greet"?)');
    const badJson = await api('/api/tasks/greet/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"oops"',
    });
    expect(badJson.status).toBe(400);
    const tooBig = await api('/api/tasks/greet/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ blob: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(tooBig.status).toBe(413);
    expect((await api('/api/runs?status=exploded')).status).toBe(400);
    expect((await api('/api/runs/01NOTARUN000000000000000000')).status).toBe(404);
    const after = (await (await api('/api/runs?limit=1000')).json()) as { runs: unknown[] };
    expect(after.runs.length).toBe(before.runs.length);
  });

  it('/api/status lists this daemon', async () => {
    const status = (await (await api('/api/status')).json()) as { daemons: Array<{ node: string }> };
    expect(status.daemons.map((d) => d.node)).toContain('test-node');
  });
});
