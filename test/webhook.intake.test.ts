import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { sign as signGithub } from '@octokit/webhooks-methods';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signHmac } from '../src/triggers/webhook/signature.js';
import { useDaemon } from './helpers/daemon.js';

// POST /hooks/<task> against a running daemon with real containers: each answer the
// contract names, and what the container receives.
const SW_SECRET = `whsec_${Buffer.from('intake test key, 24 byte').toString('base64')}`;
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 32m, timeout: 20s }
tasks:
  bid-placed:
    command:
      - sh
      - -c
      - |
        echo "sha256=$(sha256sum < /runlet/payload.json | cut -d' ' -f1)"
        echo "bytes=$(wc -c < /runlet/payload.json)"
        echo "ct=$RUNLET_CONTENT_TYPE"
        echo "headers=$RUNLET_HEADERS"
    webhook:
      secret: hmac-secret-1
      signature: hmac-sha256
      tolerance: 5m
      maxBody: 4k
      headers: [x-bid-source]
  gh-push:
    command: ["true"]
    webhook: { secret: gh-secret-2, signature: github }
  bearer-hook:
    command: ["true"]
    webhook: { secret: bearer-secret-3, signature: bearer }
  bearer-body:
    command: ["true"]
    webhook: { secret: bearer-secret-6, signature: bearer, dedupe: body, dedupeWindow: 2s }
  sw-hook:
    command: ["true"]
    webhook: { secret: "${SW_SECRET}", signature: standard-webhooks }
  limited:
    command: ["true"]
    webhook: { secret: limited-secret-4, rateLimit: 3/m }
  one-at-a-time:
    command: [sleep, "2"]
    overlap: skip
    webhook: { secret: skip-secret-5 }
  no-hook: { command: ["true"] }
`;
const ctx = useDaemon(CONFIG);

const url = (task: string) => `${ctx.daemon.url}/hooks/${task}`;
const hmacPost = (task: string, secret: string, body: string, headers: Record<string, string> = {}, t?: number) =>
  fetch(url(task), { method: 'POST', body, headers: { 'x-runlet-signature': signHmac(secret, body, t), ...headers } });
const hmacPostSigned = (task: string, body: string, signature: string, headers: Record<string, string> = {}) =>
  fetch(url(task), { method: 'POST', body, headers: { 'x-runlet-signature': signature, ...headers } });
const runsOf = async (task: string) => ctx.daemon.store.list({ task, limit: 1000 });
// A listing leaves payloads out (their own keys): the runs of a task read with theirs.
const runsWithPayloadOf = async (task: string) =>
  (
    await ctx.daemon.store.getMany(
      (await runsOf(task)).map((r) => r.id),
      { withPayload: true },
    )
  ).filter((r) => r !== undefined);

describe('webhook intake', () => {
  it('202 once queued; the container sees the exact body bytes, its content type and allow-listed headers only', async () => {
    // A BOM, CRLF, odd spacing and non-ASCII: anything re-encoded would change the hash.
    const body = '\uFEFF{ "bid" : 42,\r\n  "who": "Zoë 🦊" }  \n';
    const res = await hmacPost('bid-placed', 'hmac-secret-1', body, {
      'content-type': 'application/vnd.bid+json; charset=utf-8',
      'x-runlet-delivery': 'evt-0001',
      'x-bid-source': 'auction-7',
      'x-not-listed': 'secret-ish',
      'user-agent': 'bid-service/2.1',
    });
    expect(res.status).toBe(202);
    const { id, status } = (await res.json()) as { id: string; status: string };
    expect(status).toBe('queued');
    expect(res.headers.get('location')).toBe(`/api/runs/${id}`);
    const rec = await ctx.daemon.waitForEnd(id);
    expect(rec).toMatchObject({ status: 'succeeded', trigger: 'webhook' });
    // The identity is what the signature covers; the unsigned delivery id only traces.
    expect(rec.dedupeKey).toMatch(/^bid-placed:hook:hmac:[0-9a-f]{64}$/);
    expect(rec.cause).toMatch(/^delivery evt-0001, signed t=\d+ and body$/);
    const bytes = Buffer.from(body);
    expect(rec.logTail).toContain(`sha256=${createHash('sha256').update(bytes).digest('hex')}\n`);
    expect(rec.logTail).toContain(`bytes=${bytes.length}\n`);
    expect(rec.logTail).toContain('ct=application/vnd.bid+json; charset=utf-8\n');
    const headers = JSON.parse(/headers=(.*)\n/.exec(rec.logTail ?? '')![1]!);
    expect(headers).toEqual({
      'content-type': 'application/vnd.bid+json; charset=utf-8',
      'user-agent': 'bid-service/2.1',
      'x-runlet-delivery': 'evt-0001',
      'x-bid-source': 'auction-7',
    });
  });

  it('hmac-sha256: a captured signed request replayed under new delivery ids is the first run; a re-signed one is a new event', async () => {
    const body = '{"bid":7}';
    const signature = signHmac('hmac-secret-1', body);
    const first = await hmacPostSigned('bid-placed', body, signature, { 'x-runlet-delivery': 'evt-replay-0' });
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    const replays = await Promise.all(
      [1, 2, 3].map((i) => hmacPostSigned('bid-placed', body, signature, { 'x-runlet-delivery': `evt-replay-${i}` })),
    );
    for (const res of replays) {
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ id, created: false });
    }
    // Signed again at another second: other signed material, so another event.
    const resigned = await hmacPost('bid-placed', 'hmac-secret-1', body, {}, Math.floor(Date.now() / 1000) - 7);
    expect(resigned.status).toBe(202);
    const other = (await resigned.json()) as { id: string };
    await ctx.daemon.waitForEnd(id);
    await ctx.daemon.waitForEnd(other.id);
    const runs = (await runsWithPayloadOf('bid-placed')).filter((r) => r.payload === body);
    expect(runs.map((r) => r.id).sort()).toEqual([id, other.id].sort());
  });

  it('401 and nothing queued: timestamps outside the tolerance, a wrong secret, no signature', async () => {
    const before = (await runsOf('bid-placed')).length;
    // Each offset from the clock as the request is sent, 30 s beyond the 5 m tolerance: a
    // `now` taken once went stale on a loaded machine, and now + 301 came within tolerance.
    for (const offset of [-330, 330, -86_400]) {
      const t = Math.floor(Date.now() / 1000) + offset;
      const res = await hmacPost('bid-placed', 'hmac-secret-1', '{"late":true}', { 'x-runlet-delivery': `late-${t}` }, t);
      expect(res.status).toBe(401);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('WEBHOOK_UNAUTHORIZED');
      expect(error.message).toMatch(/from this server's clock, more than the tolerance of 5m/);
    }
    const wrong = await hmacPost('bid-placed', 'not-the-secret', '{"x":1}');
    expect(wrong.status).toBe(401);
    const missing = await fetch(url('bid-placed'), { method: 'POST', body: '{"x":1}' });
    expect(missing.status).toBe(401);
    const msg = ((await missing.json()) as { error: { message: string } }).error.message;
    expect(msg).toContain('X-Runlet-Signature is missing; expected header X-Runlet-Signature: t=<unix seconds>,v1=');
    expect(msg).not.toContain('hmac-secret-1');
    expect((await runsOf('bid-placed')).length).toBe(before);
    // Each refusal is counted by reason, so a sender with a wrong secret shows on a dashboard.
    const metrics = await (await fetch(`${ctx.daemon.url}/metrics`)).text();
    const line = metrics
      .split('\n')
      .find(
        (l) => l.startsWith('runlet_trigger_rejections_total{') && l.includes('task="bid-placed"') && l.includes('reason="bad_signature"'),
      );
    expect(Number(line?.split(' ').at(-1))).toBeGreaterThanOrEqual(5);
  });

  it('github style: X-Hub-Signature-256 over the body; a replay under a new X-GitHub-Delivery is the first run', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', commits: [] });
    const signature = await signGithub('gh-secret-2', body);
    const headers = {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958',
      'x-hub-signature-256': signature,
    };
    const res = await fetch(url('gh-push'), { method: 'POST', body, headers });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const rec = await ctx.daemon.waitForEnd(id);
    const digest = createHash('sha256').update(body).digest('hex');
    expect(rec).toMatchObject({
      status: 'succeeded',
      dedupeKey: `gh-push:hook:sha256:${digest}`,
      cause: 'delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958, signed body',
      headers: { 'x-github-event': 'push', 'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' },
    });
    expect(rec.headers).not.toHaveProperty('x-hub-signature-256');
    for (const delivery of ['72d3162e-cc78-11e3-81ab-4c9367dc0958', 'a-new-delivery-1', 'a-new-delivery-2']) {
      const replayed = await fetch(url('gh-push'), { method: 'POST', body, headers: { ...headers, 'x-github-delivery': delivery } });
      expect(replayed.status, delivery).toBe(200);
      expect(await replayed.json()).toEqual({ id, created: false });
    }
    const bad = await fetch(url('gh-push'), { method: 'POST', body: body + ' ', headers });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain('X-Hub-Signature-256: sha256=');
    expect(await runsOf('gh-push')).toHaveLength(1);
  });

  it('standard-webhooks (signed by the standardwebhooks library): 202, a redelivery with the same webhook-id 200 with the first run; tampered or stale: 401, nothing queued', async () => {
    const sender = new Webhook(SW_SECRET);
    const body = JSON.stringify({ type: 'invoice.paid', data: { id: 'in_1' } });
    const send = (id: string, at: Date, text = body, signedBody = body) =>
      fetch(url('sw-hook'), {
        method: 'POST',
        body: text,
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': sender.sign(id, at, signedBody),
        },
      });
    const first = await send('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', new Date());
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    // A redelivery: same id, signed again at a later time.
    const again = await send('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', new Date(Date.now() - 30_000));
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ id, created: false });
    const rec = await ctx.daemon.waitForEnd(id);
    expect(rec).toMatchObject({
      status: 'succeeded',
      dedupeKey: 'sw-hook:hook:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
      cause: 'webhook-id msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
    });
    expect(rec.headers).toMatchObject({ 'webhook-id': 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W' });
    expect(rec.headers).toHaveProperty('webhook-timestamp');
    expect(rec.headers).not.toHaveProperty('webhook-signature');

    const tampered = await send('msg_tampered', new Date(), body.replace('in_1', 'in_2'), body);
    expect(tampered.status).toBe(401);
    expect(((await tampered.json()) as { error: { message: string } }).error.message).toContain(
      'webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>"',
    );
    const stale = await send('msg_stale', new Date(Date.now() - 6 * 60_000));
    expect(stale.status).toBe(401);
    expect(((await stale.json()) as { error: { message: string } }).error.message).toMatch(/more than the tolerance of 5m/);
    expect((await runsOf('sw-hook')).map((r) => r.id)).toEqual([id]);
  });

  it('bearer: two identical requests without a delivery id are two runs ("deploy" pressed twice deploys twice)', async () => {
    const post = () => fetch(url('bearer-hook'), { method: 'POST', body: '', headers: { authorization: 'Bearer bearer-secret-3' } });
    const first = await post();
    const second = await post();
    expect([first.status, second.status]).toEqual([202, 202]);
    const a = (await first.json()) as { id: string };
    const b = (await second.json()) as { id: string };
    expect(a.id).not.toBe(b.id);
    expect((await ctx.daemon.waitForEnd(a.id)).status).toBe('succeeded');
    expect((await ctx.daemon.waitForEnd(b.id)).status).toBe('succeeded');
    // With a delivery id the sender says they are one event.
    const keyed = await Promise.all(
      [1, 2].map(() =>
        fetch(url('bearer-hook'), {
          method: 'POST',
          body: '',
          headers: { authorization: 'Bearer bearer-secret-3', 'idempotency-key': 'deploy-42' },
        }),
      ),
    );
    expect(keyed.map((r) => r.status).sort()).toEqual([200, 202]);
    await ctx.daemon.waitForEnd(((await keyed[0]!.json()) as { id: string }).id);
  });

  it('dedupe: body collapses identical bodies within dedupeWindow, and not after it', async () => {
    const post = () =>
      fetch(url('bearer-body'), { method: 'POST', body: '{"deploy":"main"}', headers: { authorization: 'Bearer bearer-secret-6' } });
    const startedAt = Date.now();
    const first = await post();
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    const within = await post();
    expect(within.status).toBe(200);
    expect(await within.json()).toEqual({ id, created: false });
    // The window (2s) is the dedupe key's own lifetime in Redis.
    await new Promise((r) => setTimeout(r, Math.max(0, startedAt + 2_300 - Date.now())));
    const after = await post();
    expect(after.status).toBe(202);
    const later = (await after.json()) as { id: string };
    expect(later.id).not.toBe(id);
    await ctx.daemon.waitForEnd(id);
    await ctx.daemon.waitForEnd(later.id);
    expect(await runsOf('bearer-body')).toHaveLength(2);
  });

  it('bearer: Authorization: Bearer <secret>; the header never reaches the run', async () => {
    const ok = await fetch(url('bearer-hook'), {
      method: 'POST',
      body: 'ping',
      headers: { authorization: 'Bearer bearer-secret-3', 'content-type': 'text/plain' },
    });
    expect(ok.status).toBe(202);
    const { id } = (await ok.json()) as { id: string };
    const rec = await ctx.daemon.waitForEnd(id);
    expect(rec).toMatchObject({
      status: 'succeeded',
      payload: 'ping',
      contentType: 'text/plain',
      headers: { 'content-type': 'text/plain' },
    });
    expect(rec.headers).not.toHaveProperty('authorization');
    for (const authorization of ['Bearer bearer-secret-', 'Bearer bearer-secret-33', 'Basic YmVhcmVyLXNlY3JldC0z', '']) {
      const res = await fetch(url('bearer-hook'), { method: 'POST', body: 'ping2', headers: { authorization } });
      expect(res.status, authorization).toBe(401);
    }
    expect((await runsWithPayloadOf('bearer-hook')).filter((r) => r.payload === 'ping' || r.payload === 'ping2').map((r) => r.id)).toEqual([
      id,
    ]);
  });

  it('a run recorded skipped (overlap: skip while one runs) answers 200 with status skipped and the reason', async () => {
    const first = await hmacPost('one-at-a-time', 'skip-secret-5', '{"n":1}');
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    await ctx.daemon.events.once('run:started', (e) => e.runId === id, 10_000);
    const second = await hmacPost('one-at-a-time', 'skip-secret-5', '{"n":2}');
    expect(second.status).toBe(200);
    const body = (await second.json()) as { id: string; status: string; reason: string };
    expect(body).toMatchObject({ status: 'skipped' });
    expect(body.reason).toMatch(/^overlap skip/);
    expect((await ctx.daemon.store.get(body.id))?.status).toBe('skipped');
    const rec = await ctx.daemon.waitForEnd(id);
    expect(rec.status, JSON.stringify(rec)).toBe('succeeded');
  });

  it('404 for an unknown task or a task without webhook:, 405 with Allow: POST for other methods', async () => {
    const unknown = await fetch(url('bid-place'), { method: 'POST', body: 'x' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe(
      'no task named "bid-place" (did you mean "bid-placed"?)',
    );
    const noHook = await fetch(url('no-hook'), { method: 'POST', body: 'x' });
    expect(noHook.status).toBe(404);
    expect(((await noHook.json()) as { error: { message: string } }).error.message).toMatch(/has no webhook/);
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(url('bid-placed'), { method, ...(method !== 'GET' && { body: 'x' }) });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
    }
    expect(await runsOf('no-hook')).toHaveLength(0);
  });

  it('413 over maxBody, refused on Content-Length before the body is sent, and a chunked body stopped at the limit', async () => {
    const before = (await runsOf('bid-placed')).length;
    const big = 'x'.repeat(4097);
    const res = await hmacPost('bid-placed', 'hmac-secret-1', big);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      'the payload is larger than task "bid-placed" accepts (webhook.maxBody: 4 KiB); nothing was queued',
    );

    // Announces 1 GiB and sends nothing: the answer comes anyway.
    const announced = await rawExchange(`POST /hooks/bid-placed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${2 ** 30}\r\n\r\n`);
    expect(announced).toMatch(/^HTTP\/1\.1 413 /);
    // A chunked body that never ends: answered once 4 KiB have come.
    const chunk = `400\r\n${'y'.repeat(0x400)}\r\n`;
    const chunked = await rawExchange(
      `POST /hooks/bid-placed HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.repeat(5)}`,
    );
    expect(chunked).toMatch(/^HTTP\/1\.1 413 /);
    expect((await runsOf('bid-placed')).length).toBe(before);
  });

  it('429 with Retry-After beyond rateLimit; unsigned requests do not use up the quota', async () => {
    for (let i = 0; i < 10; i++) expect((await fetch(url('limited'), { method: 'POST', body: `stranger ${i}` })).status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await hmacPost('limited', 'limited-secret-4', `ok ${i}`)).status).toBe(202);
    const over = await hmacPost('limited', 'limited-secret-4', 'one too many');
    expect(over.status).toBe(429);
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const { error } = (await over.json()) as { error: { code: string; message: string } };
    expect(error).toMatchObject({ code: 'RATE_LIMITED' });
    expect(error.message).toContain('at most 3 webhook request(s) per 1m');
    const runs = await runsOf('limited');
    expect(runs).toHaveLength(3);
    await Promise.all(runs.map((r) => ctx.daemon.waitForEnd(r.id)));
  });
});

/** Writes `request` on a raw socket, leaves it open, and resolves with the first bytes answered. */
function rawExchange(request: string): Promise<string> {
  const { hostname, port } = new URL(ctx.daemon.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer; got ${JSON.stringify(got)}`));
    }, 5000);
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(got);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}
