import { createHash, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { WebhookConfig } from '../../config/types.js';
import type { SignedIdentity } from './signature.js';

/**
 * Where a sender of an unsigned scheme (bearer, auth: none) names its event, in order of
 * preference. Signed schemes ignore them for identity: no signature covers them.
 */
export const DELIVERY_HEADERS: readonly string[] = ['x-runlet-delivery', 'idempotency-key'];

/** Headers read only to trace a request (the cause text), never as its identity. */
const TRACE_HEADERS: readonly string[] = ['x-runlet-delivery', 'x-github-delivery'];

/** Visible ASCII only: the id ends up in a Redis key and in log lines. */
const DELIVERY_ID = /^[\x21-\x7e]{1,200}$/;

export type Delivery =
  | {
      readonly ok: true;
      readonly dedupeKey: string;
      readonly cause: string;
      /** Unset: the store's default memory (7 days). */
      readonly dedupeTtlMs?: number;
    }
  | { readonly ok: false; readonly header: string; readonly detail: string };

type Header = { ok: true; id?: string; name?: string } | { ok: false; header: string; detail: string };

/** The first of `names` the request carries, checked to be a usable id. */
function headerId(names: readonly string[], headers: IncomingHttpHeaders): Header {
  for (const name of names) {
    const raw = headers[name];
    if (raw === undefined) continue;
    const id = (Array.isArray(raw) ? raw.join(',') : raw).trim();
    if (!DELIVERY_ID.test(id)) return { ok: false, header: name, detail: 'a delivery id is 1 to 200 visible ASCII characters' };
    return { ok: true, id, name };
  }
  return { ok: true };
}

/**
 * What makes two requests "the same event", so that a sender's retries (on timeouts and
 * 5xx) make one run while distinct events each make theirs. The rule, by scheme:
 *
 * - signed (hmac-sha256, github, standard-webhooks): the identity `verify` took from signed
 *   material only: a digest of "<t>.<body>", the body's sha256, the webhook-id. A header no
 *   signature covers could be changed by whoever replays a captured request, turning one
 *   request into N runs. Delivery headers are then read for the cause text only.
 * - unsigned (bearer, auth: none): the token holder is trusted, so X-Runlet-Delivery or
 *   Idempotency-Key is the identity when sent. Without one, `dedupe: body` makes identical
 *   bodies one event for `dedupeWindowMs`; by default each request is its own event: two
 *   presses of "deploy" are two deploys.
 */
export function deliveryOf(
  task: string,
  hook: WebhookConfig,
  headers: IncomingHttpHeaders,
  body: Buffer,
  signed?: SignedIdentity,
): Delivery {
  if (signed) {
    if (signed.header && !DELIVERY_ID.test(signed.id))
      return { ok: false, header: signed.header, detail: 'an event id is 1 to 200 visible ASCII characters' };
    const trace = headerId(TRACE_HEADERS, headers);
    if (!trace.ok) return trace;
    const traced = trace.id !== undefined && trace.id !== signed.id ? `delivery ${trace.id}, ` : '';
    return { ok: true, dedupeKey: `${task}:hook:${signed.id}`, cause: `${traced}${signed.what}` };
  }
  const named = headerId(DELIVERY_HEADERS, headers);
  if (!named.ok) return named;
  if (named.id !== undefined) return { ok: true, dedupeKey: `${task}:hook:${named.id}`, cause: `delivery ${named.id}` };
  if (hook.dedupe === 'body') {
    // "sha256:" cannot clash with an id a sender picks for itself unless it means to.
    const digest = createHash('sha256').update(body).digest('hex');
    return {
      ok: true,
      dedupeKey: `${task}:hook:sha256:${digest}`,
      cause: `body sha256:${digest.slice(0, 16)} (dedupe: body)`,
      dedupeTtlMs: hook.dedupeWindowMs,
    };
  }
  // A fresh id per request: nothing says this one repeats another.
  const id = randomUUID();
  return { ok: true, dedupeKey: `${task}:hook:req:${id}`, cause: `request ${id} (no delivery id)` };
}
