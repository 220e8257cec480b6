import { describe, expect, it } from 'vitest';
import { useDaemon } from './helpers/daemon.js';

// HTTP functions end to end: a real daemon, real containers (one per request, the cold
// path), requests with node's fetch on the functions listener.

const FN = `
const fs = require('fs');
const e = JSON.parse(fs.readFileSync('/runlet/payload.json', 'utf8'));
const out = (v) => fs.writeFileSync('/runlet/output.json', JSON.stringify(v));
const r = e.routeKey;
if (r === 'GET /fail') { console.error('boom'); process.exit(1); }
else if (r === 'GET /slow') setTimeout(() => out({ slept: true }), 6000);
else if (r === 'GET /plain') out({ hello: 'world' });
else if (r === 'POST /bin') out({ statusCode: 201, headers: { 'content-type': 'application/octet-stream' }, isBase64Encoded: true,
  body: e.isBase64Encoded ? e.body : Buffer.from(e.body || '').toString('base64') });
else out({ statusCode: 200, headers: { 'content-type': 'application/json', 'x-fn': 'yes' }, cookies: ['a=1; Path=/', 'b=2'], body: JSON.stringify(e) });
`;

const task = (name: string, http: string, extra = '') => `
  ${name}:
    image: runlet/node:local
    command: [node, -e, ${JSON.stringify(FN)}]
    memory: 64m
${extra}
    http:
${http}`;

const ctx = useDaemon(
  `
tasks:
${task(
  'fn-open',
  `      routes: ["GET /echo/:name", "POST /echo/:name", "GET /plain", "POST /bin", "GET /fail"]
      auth: none
      cors: { origins: ["https://app.example"] }`,
  '    concurrency: 4',
)}
${task(
  'fn-bearer',
  `      routes: ["GET /private"]
      auth: bearer
      secret: s3cret-token`,
)}
${task(
  'fn-keys',
  `      routes: ["GET /keyed"]
      auth: apiKeys
      apiKeys: { alice: k-alice-123, bob: k-bob-456 }
      rateLimit: { perKey: 2/1m }`,
  '    concurrency: 2',
)}
${task(
  'fn-slow',
  `      routes: ["GET /slow"]
      auth: none
      timeout: 2s`,
  '    concurrency: 1\n    maxQueued: 1',
)}
`,
  { fnPort: 0, fnHost: '127.0.0.1' },
);

const call = (path: string, init: RequestInit = {}) => fetch(`${ctx.daemon.fnUrl}${path}`, init);
type Event = Record<string, any>;

describe('HTTP functions', () => {
  it('a route with a path parameter and a query string reaches the function as an API Gateway 2.0 event; its proxy result is the response', async () => {
    const res = await call('/echo/ada%20l?x=1&y=two&x=3', { headers: { 'x-custom': 'Yes', cookie: 'c1=v1; c2=v2' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fn')).toBe('yes');
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2']);
    const runId = res.headers.get('x-runlet-run-id')!;
    expect(runId).toBeTruthy();
    const e = (await res.json()) as Event;
    expect(e).toMatchObject({
      version: '2.0',
      routeKey: 'GET /echo/:name',
      rawPath: '/echo/ada%20l',
      rawQueryString: 'x=1&y=two&x=3',
      queryStringParameters: { x: '1,3', y: 'two' },
      pathParameters: { name: 'ada l' },
      cookies: ['c1=v1', 'c2=v2'],
      isBase64Encoded: false,
      requestContext: { http: { method: 'GET', path: '/echo/ada%20l', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' } },
    });
    expect(e.headers['x-custom']).toBe('Yes');
    expect(e.headers.cookie).toBeUndefined();
    expect(e.body).toBeUndefined();
    expect(typeof e.requestContext.requestId).toBe('string');
    expect(typeof e.requestContext.timeEpoch).toBe('number');
    // The run is recorded like any run.
    const rec = await ctx.daemon.store.get(runId);
    expect(rec).toMatchObject({ task: 'fn-open', trigger: 'http', status: 'succeeded' });
  });

  it('a text body arrives as text, a binary body as base64, and a binary result goes back byte for byte', async () => {
    const text = await call('/echo/x', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":"ü"}' });
    const e = (await text.json()) as Event;
    expect(e).toMatchObject({ body: '{"a":"ü"}', isBase64Encoded: false, routeKey: 'POST /echo/:name' });

    const bytes = Buffer.from([0, 1, 2, 250, 255, 0x80, 10]);
    const bin = await call('/bin', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    expect(bin.status).toBe(201);
    expect(bin.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await bin.arrayBuffer())).toEqual(bytes);
  });

  it('a result without statusCode is a 200 JSON body of the whole result; two identical requests are two runs', async () => {
    const [a, b] = await Promise.all([call('/plain'), call('/plain')]);
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await a.json()).toEqual({ hello: 'world' });
    expect(await b.json()).toEqual({ hello: 'world' });
    const ids = [a.headers.get('x-runlet-run-id'), b.headers.get('x-runlet-run-id')];
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) expect((await ctx.daemon.store.get(id!))?.status).toBe('succeeded');
  });

  it('a function that exits 1 answers 502 with its run id; its run is recorded failed', async () => {
    const res = await call('/fail');
    expect(res.status).toBe(502);
    const id = res.headers.get('x-runlet-run-id')!;
    expect(await res.json()).toMatchObject({ message: 'Bad Gateway', status: 'failed', runId: id });
    expect((await ctx.daemon.store.get(id))?.status).toBe('failed');
  });

  it('unknown paths get 404 and a known path with another method 405, without a run', async () => {
    expect((await call('/nowhere')).status).toBe(404);
    const res = await call('/plain', { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET');
  });

  it('bearer: no or a wrong token gets 401 Unauthorized, the right one runs', async () => {
    expect((await call('/private')).status).toBe(401);
    const wrong = await call('/private', { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ message: 'Unauthorized' });
    const ok = await call('/private', { headers: { authorization: 'Bearer s3cret-token' } });
    expect(ok.status).toBe(200);
  });

  it("API keys: a missing or unknown key gets 403 Forbidden; the consumer's name reaches the function; past its rate a key gets 429, others don't", async () => {
    expect((await call('/keyed')).status).toBe(403);
    const bad = await call('/keyed', { headers: { 'x-api-key': 'k-mallory' } });
    expect(bad.status).toBe(403);
    expect(await bad.json()).toEqual({ message: 'Forbidden' });

    const alice = () => call('/keyed', { headers: { 'x-api-key': 'k-alice-123' } });
    const first = await alice();
    expect(first.status).toBe(200);
    expect(((await first.json()) as Event).requestContext.authorizer).toEqual({ lambda: { consumer: 'alice' } });
    expect((await alice()).status).toBe(200);
    const third = await alice();
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await third.json()).toEqual({ message: 'Too Many Requests' });
    // The limit is per key: bob has his own.
    const bob = await call('/keyed', { headers: { 'x-api-key': 'k-bob-456' } });
    expect(bob.status).toBe(200);
    // Refused requests made no run: alice's two and bob's one.
    const runs = await ctx.daemon.store.list({ task: 'fn-keys', limit: 100 });
    expect(runs).toHaveLength(3);
  });

  it('CORS: a preflight is answered without a run; an allowed origin is echoed, another gets no CORS headers', async () => {
    const before = (await ctx.daemon.store.list({ task: 'fn-open', limit: 1000 })).length;
    const pre = await call('/echo/x', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    expect(pre.headers.get('access-control-allow-headers')).toContain('content-type');
    const other = await call('/echo/x', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(other.status).toBe(204);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect((await ctx.daemon.store.list({ task: 'fn-open', limit: 1000 })).length).toBe(before);

    const actual = await call('/plain', { headers: { origin: 'https://app.example' } });
    expect(actual.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(actual.headers.get('access-control-expose-headers')).toContain('x-runlet-run-id');
    const foreign = await call('/plain', { headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(200);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('past concurrency and maxQueued: 504 at the request timeout (a queued run is cancelled, never run), 503 with Retry-After beyond maxQueued', async () => {
    const first = call('/slow');
    // Wait until the first run holds the one slot, so the next one queues.
    for (let i = 0; i < 200; i++) {
      const running = await ctx.daemon.store.list({ task: 'fn-slow', status: ['starting', 'running'], limit: 10 });
      if (running.length > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const second = call('/slow');
    for (let i = 0; i < 200; i++) {
      const queued = await ctx.daemon.store.list({ task: 'fn-slow', status: ['queued'], limit: 10 });
      if (queued.length > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const third = await call('/slow');
    expect(third.status).toBe(503);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    const skippedId = third.headers.get('x-runlet-run-id')!;
    expect((await ctx.daemon.store.get(skippedId))?.status).toBe('skipped');

    const [a, b] = await Promise.all([first, second]);
    expect(a.status).toBe(504);
    // The one holding the slot is past the queue: it is left to run, never cancelled. Under a
    // loaded engine its container may still be starting when the 2 s deadline passes.
    const aBody = await a.json();
    expect(aBody.message).toBe('Gateway Timeout');
    expect(['starting', 'running']).toContain(aBody.status);
    expect(aBody.cancelled).toBeUndefined();
    expect(b.status).toBe(504);
    expect(await b.json()).toMatchObject({ message: 'Gateway Timeout', status: 'queued', cancelled: true });
    const queuedRun = await ctx.daemon.waitForEnd(b.headers.get('x-runlet-run-id')!);
    expect(queuedRun.status).toBe('cancelled');
    expect(queuedRun.startedAt).toBeUndefined();
    // The running one goes on to its own end.
    expect((await ctx.daemon.waitForEnd(a.headers.get('x-runlet-run-id')!)).status).toBe('succeeded');
  });
});
