import { sign as signGithub } from '@octokit/webhooks-methods';
import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/runs/types.js';
import type { WebhookConfig } from '../src/config/types.js';
import { acceptedAnswer, resultAnswer } from '../src/http/webhook-answer.js';
import { deliveryOf } from '../src/triggers/webhook/delivery.js';
import { allowedHeaders, decodeBody, webhookRequest } from '../src/triggers/webhook/request.js';
import { signHmac, verify } from '../src/triggers/webhook/signature.js';
import { webhookConfig } from './helpers/config.js';

const SECRET = 'whsec_test_0123456789';
const hook = (over: Partial<WebhookConfig> = {}): WebhookConfig => webhookConfig(SECRET, over);
const NOW = 1_800_000_000_000;
const T = NOW / 1000;
const body = Buffer.from('{"bid":42,"who":"Zoë"}');

describe('hmac-sha256 (X-Runlet-Signature)', () => {
  it('accepts a signature over "<t>.<body>" within the tolerance', () => {
    expect(verify(hook(), { 'x-runlet-signature': signHmac(SECRET, body, T) }, body, NOW)).toMatchObject({
      ok: true,
      signed: { what: `signed t=${T} and body` },
    });
    expect(verify(hook(), { 'x-runlet-signature': signHmac(SECRET, body, T - 299) }, body, NOW)).toMatchObject({ ok: true });
  });

  it('refuses a timestamp outside the tolerance either way, saying so', () => {
    for (const t of [T - 301, T + 301]) {
      const v = verify(hook(), { 'x-runlet-signature': signHmac(SECRET, body, t) }, body, NOW);
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.why).toMatch(/more than the tolerance of 5m/);
    }
  });

  it('accepts any of several v1= entries (a sender rolling its secret)', () => {
    const good = signHmac(SECRET, body, T).split('v1=')[1];
    const header = `t=${T},v1=${'0'.repeat(64)},v1=${good}`;
    expect(verify(hook(), { 'x-runlet-signature': header }, body, NOW).ok).toBe(true);
  });

  it('refuses a changed body, another secret, a missing or malformed header, and never echoes the secret', () => {
    const cases: Array<Record<string, string>> = [
      { 'x-runlet-signature': signHmac(SECRET, Buffer.from('{"bid":43}'), T) },
      { 'x-runlet-signature': signHmac('other', body, T) },
      {},
      { 'x-runlet-signature': '' },
      { 'x-runlet-signature': `v1=${'a'.repeat(64)}` },
      { 'x-runlet-signature': `t=${T}` },
      { 'x-runlet-signature': `t=abc,v1=${'a'.repeat(64)}` },
      { 'x-runlet-signature': `t=${T},v1=zz` },
      { 'x-runlet-signature': `t=${T},t=${T + 1},v1=${'a'.repeat(64)}` },
    ];
    for (const headers of cases) {
      const v = verify(hook(), headers, body, NOW);
      expect(v.ok).toBe(false);
      if (!v.ok) {
        expect(v.expected).toContain('X-Runlet-Signature');
        expect(`${v.why} ${v.expected}`).not.toContain(SECRET);
      }
    }
  });
});

describe('github (X-Hub-Signature-256) and bearer', () => {
  it('github: sha256=<hex hmac of the body>, as @octokit/webhooks-methods signs it', async () => {
    const h = hook({ signature: 'github' });
    const text = body.toString('utf8');
    expect(verify(h, { 'x-hub-signature-256': await signGithub(SECRET, text) }, body, NOW).ok).toBe(true);
    expect(verify(h, { 'x-hub-signature-256': await signGithub('nope', text) }, body, NOW).ok).toBe(false);
    expect(verify(h, { 'x-hub-signature-256': (await signGithub(SECRET, text)).slice(7) }, body, NOW).ok).toBe(false);
    const missing = verify(h, {}, body, NOW);
    expect(missing).toMatchObject({ ok: false, why: 'X-Hub-Signature-256 is missing' });
  });

  it('bearer: Authorization: Bearer <secret>, scheme case-insensitive', () => {
    const h = hook({ signature: 'bearer' });
    expect(verify(h, { authorization: `Bearer ${SECRET}` }, body, NOW).ok).toBe(true);
    expect(verify(h, { authorization: `bearer ${SECRET}` }, body, NOW).ok).toBe(true);
    expect(verify(h, { authorization: `Bearer ${SECRET}x` }, body, NOW).ok).toBe(false);
    expect(verify(h, { authorization: SECRET }, body, NOW).ok).toBe(false);
    expect(verify(h, {}, body, NOW).ok).toBe(false);
  });

  it('auth: none lets anything through; a signature webhook without a secret lets nothing through', () => {
    expect(verify(hook({ auth: 'none', secret: undefined }), {}, body, NOW).ok).toBe(true);
    expect(verify(hook({ secret: undefined }), { 'x-runlet-signature': signHmac('', body, T) }, body, NOW).ok).toBe(false);
  });
});

describe('delivery id, body and request', () => {
  it('a delivery id must be 1 to 200 visible ASCII characters (it ends up in a Redis key)', () => {
    const bearer = hook({ signature: 'bearer' });
    expect(deliveryOf('bid', bearer, { 'x-runlet-delivery': 'evt_1' }, body)).toMatchObject({
      ok: true,
      dedupeKey: 'bid:hook:evt_1',
      cause: 'delivery evt_1',
    });
    expect(deliveryOf('bid', bearer, { 'x-runlet-delivery': 'has space' }, body).ok).toBe(false);
    expect(deliveryOf('bid', bearer, { 'x-runlet-delivery': 'x'.repeat(201) }, body).ok).toBe(false);
  });

  it('decodes UTF-8 exactly (a BOM is kept) and finds the first bad byte', () => {
    expect(decodeBody(Buffer.from('\uFEFFhé'))).toEqual({ ok: true, text: '\uFEFFhé' });
    expect(decodeBody(Buffer.from([0x61, 0x62, 0xff, 0x63]))).toEqual({ ok: false, byteOffset: 2 });
    expect(decodeBody(Buffer.from([0x61, 0xe2, 0x82]))).toEqual({ ok: false, byteOffset: 1 });
    expect(decodeBody(Buffer.from([0xed, 0xa0, 0x80]))).toEqual({ ok: false, byteOffset: 0 }); // a lone surrogate
  });

  it('passes the built-in and configured headers only, never credentials', () => {
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/1',
      'x-github-event': 'push',
      'x-bid-source': 'auction-7',
      'x-other': 'no',
      authorization: 'Bearer s',
      'x-runlet-signature': 't=1,v1=aa',
      'x-hub-signature-256': 'sha256=aa',
      'webhook-id': 'msg_1',
      'webhook-timestamp': '1800000000',
      'webhook-signature': 'v1,aa',
      cookie: 'c=1',
    };
    expect(allowedHeaders(['X-Bid-Source', 'authorization', 'x-hub-signature-256', 'webhook-signature'], headers)).toEqual({
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/1',
      'x-github-event': 'push',
      'x-bid-source': 'auction-7',
      'webhook-id': 'msg_1',
      'webhook-timestamp': '1800000000',
    });
  });

  it('builds the RunRequest with the body as sent and a default content type', () => {
    const task = { name: 'bid', webhook: hook({ headers: ['x-bid-source'] }) } as never;
    const req = webhookRequest(task, 'raw text', { 'x-bid-source': 's1' }, { dedupeKey: 'bid:hook:1', cause: 'delivery 1' });
    expect(req).toEqual({
      task: 'bid',
      trigger: 'webhook',
      dedupeKey: 'bid:hook:1',
      payload: 'raw text',
      contentType: 'application/octet-stream',
      headers: { 'x-bid-source': 's1' },
      cause: 'delivery 1',
    });
  });
});

describe('answers', () => {
  const rec = (over: Partial<RunRecord>): RunRecord => ({
    id: 'R1',
    task: 'bid',
    trigger: 'webhook',
    dedupeKey: 'k',
    status: 'succeeded',
    createdAt: 0,
    updatedAt: 0,
    transitions: [],
    attempts: [],
    ...over,
  });

  it('accepted: 202 queued, 200 for a redelivery, 200 with the reason for a skipped run', () => {
    expect(acceptedAnswer({ runId: 'R1', created: true })).toMatchObject({
      status: 202,
      body: '{"id":"R1","status":"queued"}',
      location: '/api/runs/R1',
    });
    expect(acceptedAnswer({ runId: 'R1', created: false })).toMatchObject({ status: 200, body: '{"id":"R1","created":false}' });
    expect(JSON.parse(acceptedAnswer({ runId: 'R1', created: true, skipped: 'overlap skip' }).body)).toEqual({
      id: 'R1',
      status: 'skipped',
      reason: 'overlap skip',
    });
  });

  it('result: output.json, else the log tail; 502 for any other end; 504 when not ended', () => {
    expect(resultAnswer('R1', rec({ output: '{"ok":1}' }), 1000)).toMatchObject({
      status: 200,
      contentType: 'application/json; charset=utf-8',
      body: '{"ok":1}',
    });
    expect(resultAnswer('R1', rec({ logTail: 'hi\n' }), 1000)).toMatchObject({
      status: 200,
      contentType: 'text/plain; charset=utf-8',
      body: 'hi\n',
    });
    const failed = resultAnswer('R1', rec({ status: 'failed', reason: 'exit code 3' }), 1000);
    expect(failed.status).toBe(502);
    expect(JSON.parse(failed.body)).toMatchObject({
      id: 'R1',
      status: 'failed',
      reason: 'exit code 3',
      error: { code: 'RUN_NOT_SUCCEEDED', message: 'run R1 ended failed: exit code 3' },
    });
    const late = resultAnswer('R1', undefined, 1500, 'running');
    expect(late).toMatchObject({ status: 504, location: '/api/runs/R1' });
    expect(JSON.parse(late.body)).toMatchObject({ id: 'R1', status: 'running', error: { code: 'RESULT_TIMEOUT' } });
  });
});
