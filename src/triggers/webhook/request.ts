import type { IncomingHttpHeaders } from 'node:http';
import type { TaskConfig } from '../../config/types.js';
import type { RunRequest } from '../../runs/types.js';
import { SIGNATURE_HEADERS } from './signature.js';

/**
 * Request headers every webhook run may read (RUNLET_HEADERS), besides the task's own
 * `headers:`. What a handler needs to tell events apart and trace them; nothing that
 * authenticates.
 */
export const BUILTIN_HEADERS: readonly string[] = [
  'content-type',
  'user-agent',
  'x-runlet-delivery',
  'idempotency-key',
  'x-github-delivery',
  'x-github-event',
  'x-github-hook-id',
  'x-request-id',
  'webhook-id',
  'webhook-timestamp',
];

/** The content type a body without one is recorded as. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/**
 * The allow-listed headers of a request, lowercase. Credentials are dropped even when a
 * task lists them: a run's env is shown in `docker inspect` and may be logged by the task.
 */
export function allowedHeaders(extra: readonly string[], headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of new Set([...BUILTIN_HEADERS, ...extra.map((h) => h.toLowerCase())])) {
    if (SIGNATURE_HEADERS.includes(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The body as text, or where it stops being UTF-8. Payloads are text (env var, JSON
 * record); decoding leniently would swap bad bytes for U+FFFD and hand the task a body
 * other than the one sent. `ignoreBOM` keeps a leading BOM: the bytes stay as sent.
 */
export function decodeBody(body: Buffer): { ok: true; text: string } | { ok: false; byteOffset: number } {
  try {
    return { ok: true, text: utf8.decode(body) };
  } catch {
    return { ok: false, byteOffset: firstInvalidUtf8(body) };
  }
}

/** Byte offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(b: Buffer): number {
  // Grow a prefix by whole sequences until decoding fails; error messages only, so the
  // simple O(n) walk over lead bytes is enough.
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (len === 0 || i + len > b.length) return i;
    try {
      utf8.decode(b.subarray(i, i + len));
    } catch {
      return i;
    }
    i += len;
  }
  return i;
}

/** The run a verified delivery asks for: the body exactly as sent, with its content type. */
export function webhookRequest(
  task: TaskConfig,
  body: string,
  headers: IncomingHttpHeaders,
  delivery: { dedupeKey: string; cause: string; dedupeTtlMs?: number },
): RunRequest {
  const contentType =
    typeof headers['content-type'] === 'string' && headers['content-type'] !== '' ? headers['content-type'] : DEFAULT_CONTENT_TYPE;
  return {
    task: task.name,
    trigger: 'webhook',
    dedupeKey: delivery.dedupeKey,
    ...(delivery.dedupeTtlMs !== undefined && { dedupeTtlMs: delivery.dedupeTtlMs }),
    payload: body,
    contentType,
    headers: allowedHeaders(task.webhook?.headers ?? [], headers),
    cause: delivery.cause,
  };
}
