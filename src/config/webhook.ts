import { z } from 'zod';
import { whsecKey } from '../lib/whsec.js';
import { got, isMap } from './describe.js';
import { withHints } from './editor-hints.js';
import { choiceField, durationField, editorPattern, expected, fail, sizeField, type Issue } from './fields.js';
import type { Finding } from './errors.js';
import { mapOf, wordListField } from './trigger-fields.js';
import type { WebhookConfig } from './types.js';
import { formatBytes, parseDurationMs, parseSizeBytes } from './units.js';
import type { KeyPath } from './yaml-source.js';

/** `webhook:` on a task: its schema, the defaults merged in, and the checks that span its keys. */

export const WEBHOOK_SIGNATURES = ['hmac-sha256', 'github', 'bearer', 'standard-webhooks'] as const;
const WEBHOOK_DEFAULTS = {
  signature: 'hmac-sha256',
  tolerance: '5m',
  respond: 'accepted',
  resultTimeout: '30s',
  dedupe: 'id',
  dedupeWindow: '10m',
} as const;
/**
 * The longest dedupeWindow: the dedupe store's own memory (runs/store.ts), and past a day
 * "the same body twice" is more likely two events than one retried.
 */
const MAX_DEDUPE_WINDOW_MS = 24 * 3600 * 1000;
/** Schemes that carry no signed event id, the only ones where dedupe: body can apply. */
const UNSIGNED_ID_SCHEMES: readonly string[] = ['bearer'];

/** Never echoes the value: it is a secret. */
export const secretField = z
  .string({
    error: (iss: Issue) =>
      iss.code === 'invalid_type'
        ? `expected a string (quote it), got ${iss.input == null ? 'nothing' : `a ${typeof iss.input}`}`
        : undefined,
  })
  .meta({
    description:
      'Shared secret of the sender (the token itself with signature: bearer). Required unless auth: none; write ${VAR} to keep it out of the file.',
  });

const RATE_EXAMPLE = 'a rate like "100/m" (100 a minute) or "20/10s"';
const RATE_UNITS: Readonly<Record<string, number>> = {
  s: 1_000,
  sec: 1_000,
  second: 1_000,
  seconds: 1_000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
};

export function parseRate(text: string): { count: number; perMs: number } | undefined {
  const m = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(text);
  if (!m) return undefined;
  const perMs = RATE_UNITS[m[2].toLowerCase()] ?? parseDurationMs(m[2]);
  return perMs === undefined ? undefined : { count: Number(m[1]), perMs };
}

export const rateLimitField = withHints(
  z
    .union([z.string(), z.number()], { error: expected(RATE_EXAMPLE) })
    .transform((value, ctx) => {
      if (typeof value === 'number')
        return fail(ctx, value, `expected ${RATE_EXAMPLE}, got ${value} (a count needs a period: write "${value}/m" or "${value}/s")`);
      const rate = parseRate(value);
      if (!rate) return fail(ctx, value, `expected ${RATE_EXAMPLE}, got ${got(value)}`);
      if (rate.count < 1)
        return fail(ctx, value, `the count must be at least 1 (to refuse every request, remove webhook:), got ${got(value)}`);
      // A window under a second is a burst limit the cluster-wide counter can't keep exactly.
      if (rate.perMs < 1_000) return fail(ctx, value, `the period must be at least 1s, got ${got(value)}`);
      return rate;
    })
    .meta({
      description:
        'At most this many accepted requests per period, across all daemons; more get 429. <count>/<s|m|h> or <count>/<duration>. No limit when unset.',
      pattern: editorPattern(
        '[0-9]+\\s*/\\s*(?:[0-9]+(?:\\.[0-9]+)?(?:ms|s|m|h|d))+|[0-9]+\\s*/\\s*(?:s|sec|seconds?|m|min|minutes?|h|hours?)',
      ),
    }),
  { examples: ['100/m', '20/10s'] },
);

/** RFC 9110 token characters: what a header name may be made of. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function headerName(word: string): { word: string } | { problem: string } {
  return HEADER_NAME.test(word) ? { word: word.toLowerCase() } : { problem: `expected a header name like "x-shop-id", got ${got(word)}` };
}

export const webhookSchema = z
  .strictObject(
    {
      auth: withHints(
        choiceField(
          'signature: requests must be signed with `secret`. none: anyone who can reach the daemon may make runs; write it only to mean it. Default signature.',
          ['signature', 'none'] as const,
        ).optional(),
        { default: 'signature' },
      ),
      secret: secretField.optional(),
      signature: withHints(
        choiceField(
          'How requests are signed, and what makes a request one event: ' +
            'hmac-sha256 (X-Runlet-Signature: t=<unix s>,v1=<hmac of "<t>.<body>">; the event is the signed t and body), ' +
            'github (X-Hub-Signature-256; the event is the body, remembered 7 days), ' +
            'standard-webhooks (webhook-id, webhook-timestamp, webhook-signature, secret whsec_<base64>; the event is the signed webhook-id; recommended for senders you control) ' +
            'or bearer (Authorization: Bearer <secret>; nothing is signed: the event is X-Runlet-Delivery or Idempotency-Key if sent, else each request is its own). Default hmac-sha256.',
          WEBHOOK_SIGNATURES,
        ).optional(),
        { default: WEBHOOK_DEFAULTS.signature },
      ),
      tolerance: withHints(
        durationField(
          'hmac-sha256 and standard-webhooks: signatures whose timestamp is further than this from now are refused (replay guard). At least 1s. Default 5m.',
          1_000,
          '1s',
        ).optional(),
        { default: WEBHOOK_DEFAULTS.tolerance },
      ),
      dedupe: withHints(
        choiceField(
          'What makes requests without an event id one event (bearer or auth: none, sent without X-Runlet-Delivery / Idempotency-Key; signed schemes always have one). ' +
            'id: nothing, each such request is its own run (pressing "deploy" twice deploys twice). body: identical bodies within dedupeWindow are one run. Default id.',
          ['id', 'body'] as const,
        ).optional(),
        { default: WEBHOOK_DEFAULTS.dedupe },
      ),
      dedupeWindow: withHints(
        durationField(
          "With dedupe: body, how long after a body's first run an identical body answers with that run instead of making another. 1s to 24h. Default 10m.",
          1_000,
          '1s',
        ).optional(),
        { default: WEBHOOK_DEFAULTS.dedupeWindow },
      ),
      respond: withHints(
        choiceField(
          'accepted: answer 202 with the run id once queued. result: wait for the run and answer with its output. Default accepted.',
          ['accepted', 'result'] as const,
        ).optional(),
        { default: WEBHOOK_DEFAULTS.respond },
      ),
      resultTimeout: withHints(
        durationField(
          'With respond: result, how long to wait for the run before answering 504 with its id (the run goes on). At least 1s. Default 30s.',
          1_000,
          '1s',
        ).optional(),
        { default: WEBHOOK_DEFAULTS.resultTimeout },
      ),
      maxBody: sizeField("Largest request body; larger ones get 413. At most the task's maxPayload, which is the default.").optional(),
      rateLimit: rateLimitField.optional(),
      headers: wordListField(
        'Request headers the run may read (RUNLET_HEADERS) besides the built-in ones (content-type, user-agent, delivery ids). Default none.',
        'a header name',
        headerName,
        undefined,
      ).optional(),
    },
    { error: mapOf('{ secret: ${HOOK_SECRET} }') },
  )
  .nullable();

export function webhookField() {
  const schema = webhookSchema.meta({
    description: '`POST /hooks/<task>` makes a run with the request body as payload. Signed with `secret` unless auth: none.',
  });
  return withHints(schema, { examples: [{ secret: '${HOOK_SECRET}' }, { secret: '${GITHUB_SECRET}', signature: 'github' }] });
}

type RawWebhook = z.output<typeof webhookSchema>;

export function resolveWebhook(w: RawWebhook, maxPayloadBytes: number): WebhookConfig {
  const hook = w ?? {};
  const auth = hook.auth ?? 'signature';
  const secret = hook.secret !== undefined && hook.secret.trim() !== '' ? hook.secret : undefined;
  return {
    auth,
    ...(auth === 'signature' && secret !== undefined && { secret }),
    signature: hook.signature ?? WEBHOOK_DEFAULTS.signature,
    toleranceMs: hook.tolerance ?? parseDurationMs(WEBHOOK_DEFAULTS.tolerance)!,
    dedupe: hook.dedupe ?? WEBHOOK_DEFAULTS.dedupe,
    dedupeWindowMs: hook.dedupeWindow ?? parseDurationMs(WEBHOOK_DEFAULTS.dedupeWindow)!,
    respond: hook.respond ?? WEBHOOK_DEFAULTS.respond,
    resultTimeoutMs: hook.resultTimeout ?? parseDurationMs(WEBHOOK_DEFAULTS.resultTimeout)!,
    maxBodyBytes: hook.maxBody ?? maxPayloadBytes,
    ...(hook.rateLimit !== undefined && { rateLimit: hook.rateLimit }),
    headers: hook.headers ?? [],
  };
}

/** Where the task's maxPayload comes from, for messages. */
export interface Payload {
  readonly bytes: number;
  readonly origin: string;
}

const sizeOf = (v: unknown): number | undefined => (typeof v === 'string' || typeof v === 'number' ? parseSizeBytes(v) : undefined);
const blank = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'string' && v.trim() === '');

/**
 * dedupe: body stands in for an event id, so it can only apply where requests carry none:
 * with a signed scheme it would never be used, and a window past the dedupe store's memory
 * would silently end early.
 */
function dedupeFindings(here: KeyPath, w: Record<string, unknown>, auth: string | undefined): Finding[] {
  const dedupe = typeof w.dedupe === 'string' ? w.dedupe.trim() : undefined;
  const signature = typeof w.signature === 'string' ? w.signature.trim() : WEBHOOK_DEFAULTS.signature;
  const findings: Finding[] = [];
  if (dedupe === 'body' && auth === 'signature' && !UNSIGNED_ID_SCHEMES.includes(signature)) {
    findings.push({
      path: [...here, 'dedupe'],
      at: 'value',
      message:
        `with signature: ${signature} every request carries a signed event id, so dedupe: body would never be used: remove dedupe ` +
        `(or use signature: bearer, whose requests carry none)`,
    });
  }
  if (w.dedupeWindow !== undefined && dedupe !== 'body') {
    findings.push({
      path: [...here, 'dedupeWindow'],
      at: 'key',
      message: 'dedupeWindow applies only with dedupe: body, so it would never be used: add dedupe: body or remove dedupeWindow',
    });
  }
  const windowMs = typeof w.dedupeWindow === 'string' ? parseDurationMs(w.dedupeWindow) : undefined;
  if (windowMs !== undefined && windowMs > MAX_DEDUPE_WINDOW_MS) {
    findings.push({
      path: [...here, 'dedupeWindow'],
      at: 'value',
      message: `dedupeWindow ${w.dedupeWindow} is more than 24h, the longest runlet remembers a body for: lower it (identical bodies a day apart are rarely one event)`,
    });
  }
  return findings;
}

/** A webhook must prove its sender unless the file says, in words, that it needn't. */
export function webhookFindings(at: KeyPath, t: Record<string, unknown>, payload: Payload): Finding[] {
  if (!('webhook' in t) || !(isMap(t.webhook) || t.webhook === null)) return [];
  const w = isMap(t.webhook) ? t.webhook : {};
  const here: KeyPath = [...at, 'webhook'];
  const auth = typeof w.auth === 'string' ? w.auth.trim() : w.auth === undefined ? 'signature' : undefined;
  const findings: Finding[] = [];
  if (auth === 'none' && !blank(w.secret)) {
    findings.push({
      path: [...here, 'secret'],
      at: 'key',
      message:
        'auth: none accepts unsigned requests, so this secret would never be checked: remove secret, or remove auth: none to require signed requests',
    });
  }
  if (auth === 'signature' && blank(w.secret)) {
    const why = typeof w.secret === 'string' ? 'secret is empty (did its ${VAR} interpolate to nothing?)' : 'no secret is set';
    findings.push({
      path: here,
      at: 'key',
      message: `${why}, so the webhook would accept anyone's requests: set secret (e.g. secret: \${HOOK_SECRET}), or write auth: none to accept unsigned requests on purpose`,
    });
  }
  findings.push(...dedupeFindings(here, w, auth));
  const signature = typeof w.signature === 'string' ? w.signature.trim() : WEBHOOK_DEFAULTS.signature;
  // Never echoes the value: it is a secret.
  if (
    auth === 'signature' &&
    signature === 'standard-webhooks' &&
    typeof w.secret === 'string' &&
    !blank(w.secret) &&
    !whsecKey(w.secret)
  ) {
    findings.push({
      path: [...here, 'secret'],
      at: 'key',
      message:
        'signature: standard-webhooks needs secret written whsec_<base64 key>, as the sender shows it, and this secret is not: copy it whole, whsec_ included',
    });
  }
  const maxBody = sizeOf(w.maxBody);
  if (maxBody !== undefined && maxBody > payload.bytes) {
    findings.push({
      path: [...here, 'maxBody'],
      at: 'value',
      message:
        `maxBody ${formatBytes(maxBody)} is more than the task's maxPayload of ${formatBytes(payload.bytes)}${payload.origin}, ` +
        `so a body between the two would be accepted and then refused as the run's payload: raise maxPayload to at least ${formatBytes(maxBody)} or lower maxBody`,
    });
  }
  return findings;
}
