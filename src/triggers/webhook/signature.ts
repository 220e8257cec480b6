import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { formatDuration } from '../../lib/format.js';
import { whsecKey } from '../../lib/whsec.js';
import type { WebhookConfig } from '../../config/types.js';

/** Headers that carry a credential: checked here, never handed to a run. */
export const SIGNATURE_HEADERS: readonly string[] = [
  'authorization',
  'x-runlet-signature',
  'x-hub-signature-256',
  'x-hub-signature',
  'webhook-signature',
];

/**
 * What makes a verified request one event, taken from material its signature covers (a
 * header no signature covers could be changed by anyone replaying a captured request).
 * `id` ends the dedupe key; `what` says for people where it came from.
 */
export interface SignedIdentity {
  readonly id: string;
  readonly what: string;
  /** Set when `id` is a header's value as sent, which must still pass as a delivery id. */
  readonly header?: string;
}

/** `signed` is absent for bearer and auth: none, which sign nothing. */
export type Verdict =
  { readonly ok: true; readonly signed?: SignedIdentity } | { readonly ok: false; readonly expected: string; readonly why: string };

const OK: Verdict = { ok: true };

/** What each scheme expects, as the 401 message states it (never the secret or a digest). */
export const EXPECTED: Record<WebhookConfig['signature'], string> = {
  'hmac-sha256': 'header X-Runlet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>',
  github: 'header X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body with the secret>',
  bearer: 'header Authorization: Bearer <secret>',
  'standard-webhooks':
    'headers webhook-id: <id>, webhook-timestamp: <unix seconds>, webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" with the key of the whsec_ secret>',
};

/**
 * Whether a request proves it comes from a sender that knows the task's secret. Reads
 * only the raw body bytes as received: a body re-serialised from parsed JSON would not
 * match the sender's signature.
 */
export function verify(hook: WebhookConfig, headers: IncomingHttpHeaders, body: Buffer, nowMs: number): Verdict {
  if (hook.auth === 'none') return OK;
  // The config refuses a signature webhook without a secret; a missing one must still
  // never mean "anything goes".
  const secret = hook.secret;
  if (!secret) return fail(hook.signature, 'the task has no secret configured');
  switch (hook.signature) {
    case 'hmac-sha256':
      return verifyHmac(secret, one(headers['x-runlet-signature']), body, nowMs, hook.toleranceMs);
    case 'github':
      return verifyGithub(secret, one(headers['x-hub-signature-256']), body);
    case 'bearer':
      return verifyBearer(secret, one(headers.authorization));
    case 'standard-webhooks':
      return verifyStandard(secret, headers, body, nowMs, hook.toleranceMs);
  }
}

function fail(scheme: WebhookConfig['signature'], why: string): Verdict {
  return { ok: false, expected: EXPECTED[scheme], why };
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

const HEX_SHA256 = /^[0-9a-f]{64}$/i;

/**
 * Stripe's scheme: the timestamp is signed with the body, so a captured request cannot be
 * replayed once it is older than the tolerance. Several v1= entries may come at once (a
 * sender rolling its secret signs with old and new); one match is enough.
 */
function verifyHmac(secret: string, header: string | undefined, body: Buffer, nowMs: number, toleranceMs: number): Verdict {
  if (header === undefined || header.trim() === '') return fail('hmac-sha256', 'X-Runlet-Signature is missing');
  let t: string | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (t !== undefined && t !== value) return fail('hmac-sha256', 'X-Runlet-Signature has more than one t=');
      t = value;
    } else if (key === 'v1') v1.push(value);
  }
  if (t === undefined || !/^\d{1,12}$/.test(t)) return fail('hmac-sha256', 'X-Runlet-Signature has no t=<unix seconds>');
  if (v1.length === 0) return fail('hmac-sha256', 'X-Runlet-Signature has no v1= entry');
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  if (!v1.some((sig) => sameDigest(sig, expected)))
    return fail('hmac-sha256', 'no v1= signature matches the body and timestamp (wrong secret, or the body was changed)');
  // Checked after the digest, so only a sender that knows the secret learns our clock.
  const skewMs = Math.abs(nowMs - Number(t) * 1000);
  if (skewMs > toleranceMs) {
    return fail(
      'hmac-sha256',
      `the timestamp t=${t} is ${formatDuration(skewMs)} from this server's clock, more than the tolerance of ${formatDuration(toleranceMs)} (a replayed request, or a clock that is off)`,
    );
  }
  // The identity is a digest of exactly what was signed ("<t>.<body>"): a replay inside
  // the tolerance is the same event whatever unsigned delivery header it carries, and one
  // outside it was refused just above.
  const digest = createHash('sha256').update(`${t}.`).update(body).digest('hex');
  return { ok: true, signed: { id: `hmac:${digest}`, what: `signed t=${t} and body` } };
}

function verifyGithub(secret: string, header: string | undefined, body: Buffer): Verdict {
  if (header === undefined || header.trim() === '') return fail('github', 'X-Hub-Signature-256 is missing');
  const m = /^sha256=(.*)$/.exec(header.trim());
  if (!m) return fail('github', 'X-Hub-Signature-256 does not start with sha256=');
  const expected = createHmac('sha256', secret).update(body).digest();
  if (!sameDigest(m[1]!, expected)) return fail('github', 'the signature does not match the body (wrong secret, or the body was changed)');
  // GitHub signs the body only, and a redelivery resends it byte for byte: its hash is the
  // one identity a replayer cannot change. X-GitHub-Delivery is not signed (kept for tracing).
  const digest = createHash('sha256').update(body).digest('hex');
  return { ok: true, signed: { id: `sha256:${digest}`, what: 'signed body' } };
}

function verifyBearer(secret: string, header: string | undefined): Verdict {
  if (header === undefined || header.trim() === '') return fail('bearer', 'Authorization is missing');
  const m = /^bearer\s+(.+)$/i.exec(header.trim());
  if (!m) return fail('bearer', 'Authorization is not "Bearer <secret>"');
  // Hashing both sides first gives equal lengths, so neither the comparison nor its
  // length check tells how much of the secret a guess got right.
  const given = createHash('sha256').update(m[1]!).digest();
  const wanted = createHash('sha256').update(secret).digest();
  return timingSafeEqual(given, wanted) ? OK : fail('bearer', 'the bearer secret is wrong');
}

const BASE64_SHA256 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * The Standard Webhooks spec (standardwebhooks.com; Svix and others send it): the id and
 * timestamp are signed with the body, so the id is a signed event identity and a captured
 * request cannot be replayed once it is older than the tolerance. Several space-separated
 * `v1,<sig>` entries may come (a sender rolling its secret); one match is enough.
 */
function verifyStandard(secret: string, headers: IncomingHttpHeaders, body: Buffer, nowMs: number, toleranceMs: number): Verdict {
  const id = one(headers['webhook-id'])?.trim();
  const ts = one(headers['webhook-timestamp'])?.trim();
  const sigs = one(headers['webhook-signature'])?.trim();
  if (!id) return fail('standard-webhooks', 'webhook-id is missing');
  if (!ts) return fail('standard-webhooks', 'webhook-timestamp is missing');
  if (!sigs) return fail('standard-webhooks', 'webhook-signature is missing');
  if (!/^\d{1,12}$/.test(ts)) return fail('standard-webhooks', 'webhook-timestamp is not <unix seconds>');
  // The config refuses a secret that is not whsec_<base64>; never fall back to its raw bytes.
  const key = whsecKey(secret);
  if (!key) return fail('standard-webhooks', "the task's secret is not whsec_<base64 key>");
  const expected = createHmac('sha256', key).update(`${id}.${ts}.`).update(body).digest();
  const matches = sigs.split(' ').some((entry) => {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') return false;
    const b64 = entry.slice(comma + 1);
    return BASE64_SHA256.test(b64) && timingSafeEqual(Buffer.from(b64, 'base64'), expected);
  });
  if (!matches)
    return fail('standard-webhooks', 'no v1, signature matches the id, timestamp and body (wrong secret, or one of them was changed)');
  // Checked after the digest, so only a sender that knows the secret learns our clock.
  const skewMs = Math.abs(nowMs - Number(ts) * 1000);
  if (skewMs > toleranceMs) {
    return fail(
      'standard-webhooks',
      `webhook-timestamp ${ts} is ${formatDuration(skewMs)} from this server's clock, more than the tolerance of ${formatDuration(toleranceMs)} (a replayed request, or a clock that is off)`,
    );
  }
  return { ok: true, signed: { id, what: `webhook-id ${id}`, header: 'webhook-id' } };
}

function sameDigest(hex: string, expected: Buffer): boolean {
  if (!HEX_SHA256.test(hex)) return false;
  return timingSafeEqual(Buffer.from(hex, 'hex'), expected);
}

/** The X-Runlet-Signature value a sender computes (for clients, tests and the bench). */
export function signHmac(secret: string, body: string | Buffer, unixSeconds = Math.floor(Date.now() / 1000)): string {
  const digest = createHmac('sha256', secret).update(`${unixSeconds}.`).update(body).digest('hex');
  return `t=${unixSeconds},v1=${digest}`;
}
