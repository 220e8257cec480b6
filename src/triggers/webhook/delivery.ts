import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Where a sender names its delivery, in order of preference. */
export const DELIVERY_HEADERS: readonly string[] = ['x-runlet-delivery', 'x-github-delivery'];

/** Visible ASCII only: the id ends up in a Redis key and in log lines. */
const DELIVERY_ID = /^[\x21-\x7e]{1,200}$/;

export type Delivery =
  | { readonly ok: true; readonly dedupeKey: string; readonly cause: string; readonly id?: string }
  | { readonly ok: false; readonly header: string; readonly detail: string };

/**
 * What makes two requests "the same event": the sender's delivery id when it names one
 * (a redelivery repeats it), else the body itself. Senders retry on timeouts and 5xx, so
 * the same event may arrive several times; the key turns all of them into one run.
 *
 * Without an id, two different events with byte-identical bodies are one run: senders
 * that may send identical bodies should send a delivery id.
 */
export function deliveryOf(task: string, headers: IncomingHttpHeaders, body: Buffer): Delivery {
  for (const name of DELIVERY_HEADERS) {
    const raw = headers[name];
    if (raw === undefined) continue;
    const id = (Array.isArray(raw) ? raw.join(',') : raw).trim();
    if (!DELIVERY_ID.test(id)) return { ok: false, header: name, detail: 'a delivery id is 1 to 200 visible ASCII characters' };
    return { ok: true, dedupeKey: `${task}:hook:${id}`, cause: `delivery ${id}`, id };
  }
  // "sha256:" cannot clash with an id a sender picks for itself unless it means to.
  const digest = createHash('sha256').update(body).digest('hex');
  return { ok: true, dedupeKey: `${task}:hook:sha256:${digest}`, cause: `delivery sha256:${digest.slice(0, 16)} (body hash; no delivery id header)` };
}
