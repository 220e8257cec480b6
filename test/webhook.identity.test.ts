import { sign as signGithub } from '@octokit/webhooks-methods';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import type { WebhookConfig } from '../src/config/types.js';
import { deliveryOf, type Delivery } from '../src/triggers/webhook/delivery.js';
import { signHmac, verify } from '../src/triggers/webhook/signature.js';
import type { IncomingHttpHeaders } from 'node:http';
import { webhookConfig } from './helpers/config.js';

// What makes a request one event, per scheme: from signed material only for signed
// schemes (a replay cannot change it), from a delivery header for unsigned ones. The
// standard-webhooks requests are made by the `standardwebhooks` library, as a sender would.
const SECRET = 'identity-secret';
const WHSEC = `whsec_${Buffer.from('a 24-byte key for tests!').toString('base64')}`;
const hook = (over: Partial<WebhookConfig> = {}): WebhookConfig => webhookConfig(SECRET, over);
const NOW = Date.now();
const T = Math.floor(NOW / 1000);
const body = Buffer.from('{"deploy":"main"}');

/** verify, then deliveryOf with what verify found, as the route does. */
function identify(h: WebhookConfig, headers: IncomingHttpHeaders, b: Buffer = body): Delivery {
  const v = verify(h, headers, b, NOW);
  if (!v.ok) throw new Error(`refused: ${v.why}`);
  return deliveryOf('t', h, headers, b, v.signed);
}
const keyOf = (d: Delivery) => (d.ok ? d.dedupeKey : `refused ${d.header}`);

describe('signed schemes: identity from signed material, never a delivery header', () => {
  it('hmac-sha256: one signed request replayed with other delivery headers is one event; another t is another', () => {
    const h = hook();
    const sig = signHmac(SECRET, body, T);
    const keys = ['evt-1', 'evt-2', undefined].map((d) =>
      keyOf(identify(h, { 'x-runlet-signature': sig, ...(d && { 'x-runlet-delivery': d }) })),
    );
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^t:hook:hmac:[0-9a-f]{64}$/);
    expect(keyOf(identify(h, { 'x-runlet-signature': signHmac(SECRET, body, T - 1) }))).not.toBe(keys[0]);
    // The delivery header is still named in the cause, for tracing.
    expect(identify(h, { 'x-runlet-signature': sig, 'x-runlet-delivery': 'evt-1' })).toMatchObject({
      cause: `delivery evt-1, signed t=${T} and body`,
    });
  });

  it('github: the body hash, whatever X-GitHub-Delivery says; the delivery stays in the cause', async () => {
    const h = hook({ signature: 'github' });
    const sig = await signGithub(SECRET, body.toString());
    const a = identify(h, { 'x-hub-signature-256': sig, 'x-github-delivery': '72d3162e-1' });
    const b = identify(h, { 'x-hub-signature-256': sig, 'x-github-delivery': '72d3162e-2' });
    expect(keyOf(a)).toMatch(/^t:hook:sha256:[0-9a-f]{64}$/);
    expect(keyOf(b)).toBe(keyOf(a));
    expect(a).toMatchObject({ cause: 'delivery 72d3162e-1, signed body' });
    expect(a.ok && a.dedupeTtlMs).toBeFalsy(); // the store's 7 days
  });
});

describe('standard-webhooks, signed by the standardwebhooks library', () => {
  const h = hook({ signature: 'standard-webhooks', secret: WHSEC });
  const sender = new Webhook(WHSEC);
  const signed = (id: string, b: Buffer | string = body, at = new Date(NOW)): Record<string, string> => ({
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': sender.sign(id, at, typeof b === 'string' ? b : b.toString()),
  });

  it('accepts it; the identity is the signed webhook-id', () => {
    const d = identify(h, signed('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W'));
    expect(d).toMatchObject({
      ok: true,
      dedupeKey: 't:hook:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
      cause: 'webhook-id msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
    });
    // A redelivery is re-signed with a new timestamp; same id, same event.
    expect(keyOf(identify(h, signed('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', body, new Date(NOW - 60_000))))).toBe(keyOf(d));
  });

  it('any of several space-separated signatures may match (a sender rolling its secret)', () => {
    const headers = signed('msg_roll');
    const other = new Webhook(`whsec_${Buffer.from('another key, 24 bytes!!!').toString('base64')}`).sign(
      'msg_roll',
      new Date(NOW),
      body.toString(),
    );
    expect(verify(h, { ...headers, 'webhook-signature': `${other} ${headers['webhook-signature']}` }, body, NOW).ok).toBe(true);
    expect(verify(h, { ...headers, 'webhook-signature': other }, body, NOW).ok).toBe(false);
  });

  it('refuses a tampered body, id or timestamp, a stale or future timestamp, missing headers, and never echoes the secret', () => {
    const good = signed('msg_1');
    const cases: Array<[IncomingHttpHeaders, Buffer, RegExp]> = [
      [good, Buffer.from('{"deploy":"evil"}'), /no v1, signature matches/],
      [{ ...good, 'webhook-id': 'msg_2' }, body, /no v1, signature matches/],
      [{ ...good, 'webhook-timestamp': String(T + 1) }, body, /no v1, signature matches/],
      [signed('msg_1', body, new Date(NOW - 301_000)), body, /more than the tolerance of 5m/],
      [signed('msg_1', body, new Date(NOW + 301_000)), body, /more than the tolerance of 5m/],
      [{ ...good, 'webhook-signature': good['webhook-signature']!.replace('v1,', 'v2,') }, body, /no v1, signature matches/],
      [{ ...good, 'webhook-signature': 'v1,short' }, body, /no v1, signature matches/],
      [{ 'webhook-timestamp': good['webhook-timestamp'], 'webhook-signature': good['webhook-signature'] }, body, /webhook-id is missing/],
      [{ 'webhook-id': 'msg_1', 'webhook-signature': good['webhook-signature'] }, body, /webhook-timestamp is missing/],
      [{ 'webhook-id': 'msg_1', 'webhook-timestamp': good['webhook-timestamp'] }, body, /webhook-signature is missing/],
      [{ ...good, 'webhook-timestamp': 'yesterday' }, body, /not <unix seconds>/],
    ];
    for (const [headers, b, why] of cases) {
      const v = verify(h, headers, b, NOW);
      expect(v.ok, JSON.stringify(headers)).toBe(false);
      if (!v.ok) {
        expect(v.why).toMatch(why);
        expect(v.expected).toContain('webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>"');
        expect(`${v.why} ${v.expected}`).not.toContain(WHSEC.slice(6));
      }
    }
  });

  it('a secret that is not whsec_<base64> lets nothing through (the config refuses it too)', () => {
    for (const secret of ['a 24-byte key for tests!', 'whsec_', 'whsec_not base64!', WHSEC.slice(6)]) {
      const v = verify(hook({ signature: 'standard-webhooks', secret }), signed('msg_1'), body, NOW);
      expect(v.ok, secret).toBe(false);
    }
  });

  it('a signed webhook-id that is no usable id is a 400, not a key', () => {
    expect(identify(h, signed('two words'))).toMatchObject({ ok: false, header: 'webhook-id' });
  });
});

describe('bearer and auth: none: nothing is signed, the token holder is trusted', () => {
  it('without a delivery id each request is its own event', () => {
    for (const h of [hook({ signature: 'bearer' }), hook({ auth: 'none', secret: undefined })]) {
      const headers = h.auth === 'none' ? {} : { authorization: `Bearer ${SECRET}` };
      const a = identify(h, headers);
      const b = identify(h, headers);
      expect(keyOf(a)).toMatch(/^t:hook:req:/);
      expect(keyOf(b)).not.toBe(keyOf(a));
    }
  });

  it('X-Runlet-Delivery, else Idempotency-Key, is the identity when sent', () => {
    const h = hook({ signature: 'bearer' });
    const auth = { authorization: `Bearer ${SECRET}` };
    expect(keyOf(identify(h, { ...auth, 'x-runlet-delivery': 'd-1' }))).toBe('t:hook:d-1');
    expect(keyOf(identify(h, { ...auth, 'idempotency-key': 'k-1' }))).toBe('t:hook:k-1');
    expect(keyOf(identify(h, { ...auth, 'x-runlet-delivery': 'd-1', 'idempotency-key': 'k-1' }))).toBe('t:hook:d-1');
    // Not GitHub's header: it names GitHub's deliveries, and bearer is not GitHub.
    expect(keyOf(identify(h, { ...auth, 'x-github-delivery': 'g-1' }))).toMatch(/^t:hook:req:/);
  });

  it('dedupe: body makes identical bodies one event, its key living dedupeWindow', () => {
    const h = hook({ signature: 'bearer', dedupe: 'body', dedupeWindowMs: 90_000 });
    const a = identify(h, { authorization: `Bearer ${SECRET}` });
    const b = identify(h, { authorization: `Bearer ${SECRET}` });
    expect(keyOf(a)).toMatch(/^t:hook:sha256:[0-9a-f]{64}$/);
    expect(keyOf(b)).toBe(keyOf(a));
    expect(a).toMatchObject({ dedupeTtlMs: 90_000 });
    expect(keyOf(identify(h, { authorization: `Bearer ${SECRET}` }, Buffer.from('other')))).not.toBe(keyOf(a));
    // An id, when sent, still wins: it says which event this is.
    expect(keyOf(identify(h, { authorization: `Bearer ${SECRET}`, 'x-runlet-delivery': 'd-9' }))).toBe('t:hook:d-9');
  });
});
