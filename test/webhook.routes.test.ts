import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { RunletConfig, TaskConfig, WebhookConfig } from '../src/config/types.js';
import type { HttpDeps } from '../src/http/deps.js';
import { buildServer } from '../src/http/server.js';
import { createLogger } from '../src/lib/logger.js';
import type { RunRecord, RunRequest } from '../src/runs/types.js';
import { signHmac } from '../src/triggers/webhook/signature.js';
import { configFrom } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// The plugin through inject() with a stand-in for dispatch: what the route hands to
// `submit`, and what it answers for each outcome. End to end (real runs) is in
// webhook.intake / webhook.result.
const SECRET = 'routes-secret';
const hookCfg = (over: Partial<WebhookConfig>): WebhookConfig => ({
  auth: 'signature',
  secret: SECRET,
  signature: 'hmac-sha256',
  toleranceMs: 300_000,
  dedupe: 'id',
  dedupeWindowMs: 600_000,
  respond: 'accepted',
  resultTimeoutMs: 200,
  maxBodyBytes: 1024,
  headers: ['x-bid-source'],
  ...over,
});

function withHooks(base: RunletConfig, hooks: Record<string, Partial<WebhookConfig>>): RunletConfig {
  const tasks: Record<string, TaskConfig> = { ...base.tasks };
  for (const [name, over] of Object.entries(hooks)) tasks[name] = { ...base.tasks[name]!, webhook: hookCfg(over) };
  return { ...base, tasks };
}

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let client: Redis;
let app: FastifyInstance;
const submitted: RunRequest[] = [];
const byKey = new Map<string, string>();
const ended = new Map<string, RunRecord>();
let skipNext: string | undefined;

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis(redis.path);
  const base = configFrom(`
defaults: { image: runlet/busybox:local }
tasks:
  bid: { command: ["true"] }
  sync: { command: ["true"] }
  limited: { command: ["true"] }
  plain: { command: ["true"] }
`);
  const config = withHooks(base, { bid: {}, sync: { respond: 'result' }, limited: { rateLimit: { count: 2, perMs: 60_000 } } });
  let n = 0;
  const deps = {
    config,
    redis: client,
    store: { get: async (id: string) => ended.get(id) ?? { id, status: 'queued' } },
    ended: { waitFor: async (id: string) => ended.get(id) },
    submit: async (request: RunRequest) => {
      const existing = byKey.get(request.dedupeKey);
      if (existing) return { runId: existing, created: false };
      const runId = `RUN${++n}`;
      byKey.set(request.dedupeKey, runId);
      submitted.push(request);
      const skipped = skipNext;
      skipNext = undefined;
      return { runId, created: true, ...(skipped && { skipped }) };
    },
  } as unknown as HttpDeps;
  app = buildServer(deps, createLogger({ level: 'silent' }));
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  client?.disconnect();
  await redis?.stopAndClean();
});

const signed = (body: string, headers: Record<string, string> = {}) => ({ 'x-runlet-signature': signHmac(SECRET, body), ...headers });
const post = (task: string, body: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `/hooks/${task}`, payload: body, headers });

describe('POST /hooks/<task> through inject()', () => {
  it('submits the raw body with its content type, allow-listed headers, and the signed identity as dedupe key', async () => {
    const body = '{ "bid": 42,  "spaces": "kept" }';
    const headers = signed(body, {
      'content-type': 'application/json',
      'x-runlet-delivery': 'd-1',
      'x-bid-source': 'a7',
      'x-secret-thing': 'no',
    });
    const res = await post('bid', body, headers);
    expect(res.statusCode).toBe(202);
    expect(res.headers.location).toMatch(/^\/api\/runs\/RUN\d+$/);
    expect(res.json()).toMatchObject({ status: 'queued' });
    const t = /t=(\d+)/.exec(headers['x-runlet-signature']!)![1];
    const digest = createHash('sha256').update(`${t}.${body}`).digest('hex');
    expect(submitted.at(-1)).toEqual({
      task: 'bid',
      trigger: 'webhook',
      dedupeKey: `bid:hook:hmac:${digest}`,
      payload: body,
      contentType: 'application/json',
      headers: { 'content-type': 'application/json', 'x-runlet-delivery': 'd-1', 'x-bid-source': 'a7', 'user-agent': 'lightMyRequest' },
      cause: `delivery d-1, signed t=${t} and body`,
    });
    // The same signed request replayed under another delivery id: the signature covers
    // t and body only, so it is the same event.
    const again = await post('bid', body, { ...headers, 'x-runlet-delivery': 'd-2' });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ id: res.json().id, created: false });
  });

  it('a run recorded skipped answers 200 with the reason', async () => {
    const reason = 'overlap skip: 1 run(s) already running (concurrency: 1)';
    skipNext = reason;
    const res = await post('bid', 'x', signed('x', { 'x-runlet-delivery': 'd-skip' }));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'skipped', reason });
  });

  it('401 on a bad signature, 415 on invalid UTF-8, 413 over maxBody, 400 on a bad delivery id: nothing submitted', async () => {
    const before = submitted.length;
    const bad = await post('bid', 'x', { 'x-runlet-signature': signHmac('wrong', 'x') });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().error.message).toMatch(/^no v1= signature matches .*; expected header X-Runlet-Signature: t=<unix seconds>,v1=/);
    const bytes = Buffer.from([0x7b, 0xff, 0x7d]);
    const notText = await app.inject({
      method: 'POST',
      url: '/hooks/bid',
      payload: bytes,
      headers: { 'x-runlet-signature': signHmac(SECRET, bytes), 'content-type': 'application/octet-stream' },
    });
    expect(notText.statusCode).toBe(415);
    expect(notText.json().error.message).toContain('not valid UTF-8 (at byte 1)');
    const big = 'x'.repeat(1025);
    const tooBig = await post('bid', big, signed(big));
    expect(tooBig.statusCode).toBe(413);
    expect(tooBig.json().error.message).toBe('the payload is larger than task "bid" accepts (webhook.maxBody: 1 KiB); nothing was queued');
    const badId = await post('bid', 'x', signed('x', { 'x-runlet-delivery': 'two words' }));
    expect(badId.statusCode).toBe(400);
    expect(submitted.length).toBe(before);
  });

  it('404 for an unknown task or one without webhook:, 405 with Allow for other methods', async () => {
    const unknown = await post('bdi', 'x');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.message).toBe('no task named "bdi" (did you mean "bid"?)');
    const plain = await post('plain', 'x');
    expect(plain.statusCode).toBe(404);
    expect(plain.json().error.code).toBe('WEBHOOK_NOT_CONFIGURED');
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const) {
      const res = await app.inject({ method, url: '/hooks/bid' });
      expect(res.statusCode, method).toBe(405);
      expect(res.headers.allow).toBe('POST');
    }
    expect((await app.inject({ method: 'GET', url: '/hooks/plain' })).statusCode).toBe(404);
  });

  it('rate limit: verified requests only count; the next one gets 429 with Retry-After', async () => {
    for (let i = 0; i < 5; i++) expect((await post('limited', 'x', { 'x-runlet-signature': 'junk' })).statusCode).toBe(401);
    expect((await post('limited', 'a', signed('a'))).statusCode).toBe(202);
    expect((await post('limited', 'b', signed('b'))).statusCode).toBe(202);
    const over = await post('limited', 'c', signed('c'));
    expect(over.statusCode).toBe(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.json().error).toMatchObject({ code: 'RATE_LIMITED' });
    expect(over.json().error.message).toMatch(/^task "limited" accepts at most 2 webhook request\(s\) per 1m; retry in \d+s/);
    expect(await client.keys('runlet:hook-rate:*')).toHaveLength(1);
  });

  it('respond: result answers with output, 502 for a failed run, 504 when it did not end', async () => {
    const okHeaders = signed('ok', { 'x-runlet-delivery': 'r-ok' });
    const ok = await post('sync', 'ok', okHeaders);
    expect(ok.statusCode).toBe(504);
    expect(ok.json()).toMatchObject({ status: 'queued', error: { code: 'RESULT_TIMEOUT' } });
    const id = ok.json().id as string;
    ended.set(id, { id, status: 'succeeded', output: '{"done":true}' } as RunRecord);
    const redelivered = await post('sync', 'ok', okHeaders);
    expect(redelivered.statusCode).toBe(200);
    expect(redelivered.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(redelivered.body).toBe('{"done":true}');
    ended.set(id, { id, status: 'failed', reason: 'exit code 1' } as RunRecord);
    const failed = await post('sync', 'ok', okHeaders);
    expect(failed.statusCode).toBe(502);
    expect(failed.json()).toMatchObject({ id, status: 'failed', reason: 'exit code 1' });
  });
});
