import { z } from 'zod';
import { got } from './describe.js';
import { editorHints, withHints } from './editor-hints.js';
import { choiceField, countField, durationField, editorPattern, expected, fail, schemeOf, sizeField, type Ctx, type Issue } from './fields.js';
import type { Finding } from './resolve.js';
import type { AfterTrigger, MongoOperation, MongoTriggerConfig, QueueTriggerConfig, WebhookConfig } from './types.js';
import { formatBytes, parseDurationMs, parseSizeBytes } from './units.js';
import type { KeyPath } from './yaml-source.js';

/**
 * The event triggers of a task (`webhook:`, `queue:`, `mongo:`, `after:`): their schemas,
 * the defaults merged in, and the checks that span keys or tasks. The checks on `after:`
 * that need the whole task graph are in after-cycles.ts.
 */

function mapOf(example: string) {
  return (iss: Issue) => (iss.code === 'invalid_type' ? `expected a map like ${example}, got ${got(iss.input)}` : undefined);
}

/** Like `expected`, but a key left out is named as missing, with what to write. */
function required(what: string, add: string) {
  return (iss: Issue) => (iss.code === 'invalid_type' && iss.input === undefined ? `required key is missing: add ${add}` : expected(what)(iss));
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// --- shared value shapes ----------------------------------------------------------------

/**
 * A list of words, also written as one string (`operations: insert`), or comma-separated,
 * which is what `${VAR}` yields. Each word is checked by `check` (message, or the word as
 * stored); a word listed twice is a mistake worth saying.
 */
function wordListField(description: string, what: string, check: (word: string) => { word: string } | { problem: string }, minOne: string | undefined) {
  return z
    .union([z.string(), z.array(z.string({ error: expected(what) }))], { error: expected(`${what}, or a list of them`) })
    .transform((value, ctx) => {
      const words = typeof value === 'string' ? value.split(',').map((w) => w.trim()).filter((w) => w !== '') : value.map((w) => w.trim());
      const out: string[] = [];
      words.forEach((raw, i) => {
        const at = typeof value === 'string' ? [] : [i];
        const result = check(raw);
        if ('problem' in result) fail(ctx, raw, result.problem, at);
        else if (out.includes(result.word)) fail(ctx, raw, `${got(raw)} is listed twice`, at);
        else out.push(result.word);
      });
      if (minOne !== undefined && words.length === 0) fail(ctx, value, minOne);
      return out;
    })
    .meta({ description });
}

function oneOf<const T extends readonly string[]>(choices: T, what: string) {
  return (word: string): { word: T[number] } | { problem: string } =>
    (choices as readonly string[]).includes(word)
      ? { word: word as T[number] }
      : { problem: `expected ${what} (${choices.join(', ')}), got ${got(word)}` };
}

// --- webhook: ---------------------------------------------------------------------------

export const WEBHOOK_SIGNATURES = ['hmac-sha256', 'github', 'bearer'] as const;
const WEBHOOK_DEFAULTS = { signature: 'hmac-sha256', tolerance: '5m', respond: 'accepted', resultTimeout: '30s' } as const;

/** Never echoes the value: it is a secret. */
const secretField = z
  .string({ error: (iss: Issue) => (iss.code === 'invalid_type' ? `expected a string (quote it), got ${iss.input == null ? 'nothing' : `a ${typeof iss.input}`}` : undefined) })
  .meta({ description: 'Shared secret of the sender (the token itself with signature: bearer). Required unless auth: none; write ${VAR} to keep it out of the file.' });

const RATE_EXAMPLE = 'a rate like "100/m" (100 a minute) or "20/10s"';
const RATE_UNITS: Readonly<Record<string, number>> = {
  s: 1_000, sec: 1_000, second: 1_000, seconds: 1_000,
  m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000,
};

export function parseRate(text: string): { count: number; perMs: number } | undefined {
  const m = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(text);
  if (!m) return undefined;
  const perMs = RATE_UNITS[m[2].toLowerCase()] ?? parseDurationMs(m[2]);
  return perMs === undefined ? undefined : { count: Number(m[1]), perMs };
}

const rateLimitField = withHints(
  z
    .union([z.string(), z.number()], { error: expected(RATE_EXAMPLE) })
    .transform((value, ctx) => {
      if (typeof value === 'number') return fail(ctx, value, `expected ${RATE_EXAMPLE}, got ${value} (a count needs a period: write "${value}/m" or "${value}/s")`);
      const rate = parseRate(value);
      if (!rate) return fail(ctx, value, `expected ${RATE_EXAMPLE}, got ${got(value)}`);
      if (rate.count < 1) return fail(ctx, value, `the count must be at least 1 (to refuse every request, remove webhook:), got ${got(value)}`);
      // A window under a second is a burst limit the cluster-wide counter can't keep exactly.
      if (rate.perMs < 1_000) return fail(ctx, value, `the period must be at least 1s, got ${got(value)}`);
      return rate;
    })
    .meta({
      description: 'At most this many accepted requests per period, across all daemons; more get 429. <count>/<s|m|h> or <count>/<duration>. No limit when unset.',
      pattern: editorPattern('[0-9]+\\s*/\\s*(?:[0-9]+(?:\\.[0-9]+)?(?:ms|s|m|h|d))+|[0-9]+\\s*/\\s*(?:s|sec|seconds?|m|min|minutes?|h|hours?)'),
    }),
  { examples: ['100/m', '20/10s'] },
);

/** RFC 9110 token characters: what a header name may be made of. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function headerName(word: string): { word: string } | { problem: string } {
  return HEADER_NAME.test(word) ? { word: word.toLowerCase() } : { problem: `expected a header name like "x-shop-id", got ${got(word)}` };
}

const webhookSchema = z
  .strictObject(
    {
      auth: withHints(
        choiceField('signature: requests must be signed with `secret`. none: anyone who can reach the daemon may make runs; write it only to mean it. Default signature.', ['signature', 'none'] as const).optional(),
        { default: 'signature' },
      ),
      secret: secretField.optional(),
      signature: withHints(
        choiceField(
          'How requests are signed: hmac-sha256 (X-Runlet-Signature: t=<unix s>,v1=<hmac of "<t>.<body>">), github (X-Hub-Signature-256) or bearer (Authorization: Bearer <secret>). Default hmac-sha256.',
          WEBHOOK_SIGNATURES,
        ).optional(),
        { default: WEBHOOK_DEFAULTS.signature },
      ),
      tolerance: withHints(
        durationField('hmac-sha256: signatures whose timestamp is further than this from now are refused (replay guard). At least 1s. Default 5m.', 1_000, '1s').optional(),
        { default: WEBHOOK_DEFAULTS.tolerance },
      ),
      respond: withHints(
        choiceField("accepted: answer 202 with the run id once queued. result: wait for the run and answer with its output. Default accepted.", ['accepted', 'result'] as const).optional(),
        { default: WEBHOOK_DEFAULTS.respond },
      ),
      resultTimeout: withHints(
        durationField('With respond: result, how long to wait for the run before answering 504 with its id (the run goes on). At least 1s. Default 30s.', 1_000, '1s').optional(),
        { default: WEBHOOK_DEFAULTS.resultTimeout },
      ),
      maxBody: sizeField('Largest request body; larger ones get 413. At most the task\'s maxPayload, which is the default.').optional(),
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
  const schema = webhookSchema.meta({ description: '`POST /hooks/<task>` makes a run with the request body as payload. Signed with `secret` unless auth: none.' });
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
    respond: hook.respond ?? WEBHOOK_DEFAULTS.respond,
    resultTimeoutMs: hook.resultTimeout ?? parseDurationMs(WEBHOOK_DEFAULTS.resultTimeout)!,
    maxBodyBytes: hook.maxBody ?? maxPayloadBytes,
    ...(hook.rateLimit !== undefined && { rateLimit: hook.rateLimit }),
    headers: hook.headers ?? [],
  };
}

// --- queue: -----------------------------------------------------------------------------

const QUEUE_DEFAULTS = { prefix: 'bull', concurrency: 50 } as const;

const queueNameField = withHints(
  z
    .string({ error: required('a BullMQ queue name like "bids"', 'name: <the BullMQ queue the producers add jobs to>') })
    .transform((value, ctx) => {
      const name = value.trim();
      if (name === '') return fail(ctx, value, 'must not be empty: name the BullMQ queue the producers add jobs to');
      // BullMQ builds its Redis keys as <prefix>:<name>:..., so a ":" would split the name.
      if (name.includes(':')) return fail(ctx, value, `a BullMQ queue name can't contain ":" (BullMQ separates its Redis keys with it), got ${got(value)}`);
      return name;
    })
    .meta({ description: 'The BullMQ queue the producers add jobs to; each job makes one run with job.data as payload.' }),
  { examples: ['bids'] },
);

const REDIS_SCHEMES = ['redis://', 'rediss://', 'unix://'];

const redisUrlField = withHints(
  z
    .string({ error: expected('a Redis URL like "redis://host:6379"') })
    .transform((value, ctx) => {
      const url = value.trim();
      if (url === '') return undefined;
      if (!REDIS_SCHEMES.some((s) => url.startsWith(s)) || !URL.canParse(url)) {
        return fail(ctx, value, `expected a Redis URL starting with ${REDIS_SCHEMES.join(', ')}, got ${schemeOf(url)}`);
      }
      return url;
    })
    .meta({ description: "Redis the queue lives in. Empty or unset: runlet's own Redis (so ${QUEUE_REDIS:-} may be left unset)." }),
  { examples: ['${BIDS_REDIS_URL:-}', 'redis://queue-host:6379'] },
);

const queueSchema = z.strictObject(
  {
    name: queueNameField,
    redis: redisUrlField.optional(),
    prefix: withHints(
      z
        .string({ error: expected('a key prefix like "bull"') })
        .transform((value, ctx) => value.trim() || fail(ctx, value, 'must not be empty (leave prefix out for BullMQ\'s default, "bull")'))
        .meta({ description: 'BullMQ key prefix of the queue, as the producers set it. Default bull.' })
        .optional(),
      { default: QUEUE_DEFAULTS.prefix },
    ),
    concurrency: withHints(
      countField('Source jobs one daemon holds at once while their runs are queued or running. Default 50.', 'jobs', 50).optional(),
      { default: QUEUE_DEFAULTS.concurrency },
    ),
  },
  { error: mapOf('{ name: bids }') },
);

export function queueField() {
  return withHints(queueSchema.meta({ description: 'Jobs of an outside BullMQ queue make runs; the job completes when its run succeeds.' }), {
    examples: [{ name: 'bids', redis: '${BIDS_REDIS_URL:-}' }],
  });
}

export function resolveQueue(q: z.output<typeof queueSchema>): QueueTriggerConfig {
  return {
    name: q.name,
    ...(q.redis !== undefined && { redisUrl: q.redis }),
    prefix: q.prefix ?? QUEUE_DEFAULTS.prefix,
    concurrency: q.concurrency ?? QUEUE_DEFAULTS.concurrency,
  };
}

// --- mongo: -----------------------------------------------------------------------------

export const MONGO_OPERATIONS = ['insert', 'update', 'replace', 'delete'] as const;

const mongoUrlField = withHints(
  z
    .string({ error: required('a MongoDB URL like "${MONGO_URL}"', 'url: ${MONGO_URL} (it may be left unset with ${MONGO_URL:-}; the stream then waits unconfigured)') })
    .transform((value, ctx) => {
      const url = value.trim();
      // Unset is a run-time state, not a mistake: the example config must load without MongoDB.
      if (url === '') return undefined;
      if (!/^mongodb(?:\+srv)?:\/\//.test(url)) return fail(ctx, value, `expected a MongoDB URL starting with mongodb:// or mongodb+srv://, got ${schemeOf(url)}`);
      return url;
    })
    .meta({ description: 'Connection string. Empty (an unset ${MONGO_URL:-}) loads fine; the trigger then reports the stream as not configured.' }),
  { examples: ['${MONGO_URL}'] },
);

/** MongoDB's own naming rules, checked here so a typo fails at load and not at the first change event. */
function mongoNameField(what: 'db' | 'collection', forbidden: RegExp, example: string) {
  return withHints(
    z
      .string({ error: required(`a ${what} name like "${example}"`, `${what}: ${example}`) })
      .transform((value, ctx) => {
        const name = value.trim();
        if (name === '') return fail(ctx, value, `must not be empty: name the ${what === 'db' ? 'database' : 'collection'} to watch`);
        const bad = forbidden.exec(name);
        if (bad) {
          const hint = what === 'db' && bad[0] === '.' ? ` (for "${name}", write db: ${name.split('.')[0]} and collection: ${name.split('.').slice(1).join('.')})` : '';
          return fail(ctx, value, `a MongoDB ${what} name can't contain ${JSON.stringify(bad[0])}, got ${got(value)}${hint}`);
        }
        return name;
      })
      .meta({ description: what === 'db' ? 'Database to watch.' : 'Collection to watch.' }),
    { examples: [example] },
  );
}

const mongoSchema = z.strictObject(
  {
    url: mongoUrlField,
    db: mongoNameField('db', /[/\\. "$]/, 'studo'),
    collection: mongoNameField('collection', /\$/, 'appStarts'),
    operations: withHints(
      wordListField(
        'Change events that make runs: insert, update, replace, delete. Default all four.',
        'an operation',
        oneOf(MONGO_OPERATIONS, 'an operation'),
        `must list at least one of ${MONGO_OPERATIONS.join(', ')} (leave operations out for all four)`,
      ).optional(),
      { default: [...MONGO_OPERATIONS] },
    ),
    match: z
      .record(z.string(), z.unknown(), { error: mapOf('{ "fullDocument.platform": "ios" }') })
      .meta({ description: 'An extra $match stage on the change events, e.g. { "fullDocument.platform": "ios" }.' })
      .optional(),
    fullDocument: withHints(
      choiceField('updateLookup: update events carry the document as it is now. default: only the changed fields. Default updateLookup.', ['default', 'updateLookup'] as const).optional(),
      { default: 'updateLookup' },
    ),
  },
  { error: mapOf('{ url: ${MONGO_URL}, db: studo, collection: appStarts }') },
);

export function mongoField() {
  return withHints(mongoSchema.meta({ description: 'Changes to a MongoDB collection make runs, one per change event (resumed after restarts).' }), {
    examples: [{ url: '${MONGO_URL}', db: 'studo', collection: 'appStarts', operations: ['insert'] }],
  });
}

export function resolveMongo(m: z.output<typeof mongoSchema>): MongoTriggerConfig {
  return {
    ...(m.url !== undefined && { url: m.url }),
    db: m.db,
    collection: m.collection,
    operations: (m.operations as MongoOperation[] | undefined) ?? [...MONGO_OPERATIONS],
    ...(m.match !== undefined && { match: m.match }),
    fullDocument: m.fullDocument ?? 'updateLookup',
  };
}

// --- after: -----------------------------------------------------------------------------

/** The statuses a run can end in (runs/types.ts TERMINAL_STATUSES; config stays a leaf). */
export const AFTER_STATUSES = ['succeeded', 'failed', 'timed_out', 'oom_killed', 'cancelled', 'skipped', 'lost'] as const;
const AFTER_EXAMPLE = '{ task: archive, status: [succeeded] }';

const afterItem = z.strictObject(
  {
    task: z.string({ error: required('a task name', 'task: <the task whose runs trigger this one>') }).transform((v) => v.trim()).meta({ description: 'The task whose runs ending trigger this one.' }),
    status: withHints(
      wordListField(
        'Statuses of its runs that trigger this one: succeeded, failed, timed_out, oom_killed, cancelled, skipped, lost. Default [succeeded].',
        'a run status',
        oneOf(AFTER_STATUSES, 'a run status'),
        'must list at least one status (leave status out for [succeeded])',
      ).optional(),
      { default: ['succeeded'] },
    ),
  },
  { error: mapOf(AFTER_EXAMPLE) },
);

const afterList = z.array(afterItem);

/**
 * For the editor only: the two shapes `after:` takes. Parsing can't use this union, since
 * zod reports any mistake inside one of its shapes as "matched neither", without a path.
 */
const afterEditorShape = (() => {
  const { $schema: _, ...shape } = z.toJSONSchema(z.union([afterItem, afterList]), {
    io: 'input',
    target: 'draft-7',
    override: ({ zodSchema, jsonSchema }) => {
      const hints = editorHints.get(zodSchema);
      if (hints) Object.assign(jsonSchema, hints);
    },
  });
  return shape;
})();

/** One map or a list of maps, always a list afterwards. */
export function afterField() {
  return z
    .unknown()
    .transform((value, ctx): z.output<typeof afterList> => {
      if (!isMap(value) && !Array.isArray(value)) return fail(ctx, value, `expected a map like ${AFTER_EXAMPLE}, or a list of them, got ${got(value)}`);
      const parsed = Array.isArray(value) ? afterList.safeParse(value) : afterItem.safeParse(value);
      if (!parsed.success) {
        // Re-raised as they are (paths, unknown-key lists) so messages land on the right node.
        for (const issue of parsed.error.issues) ctx.addIssue({ ...issue } as Parameters<Ctx['addIssue']>[0]);
        return z.NEVER;
      }
      return Array.isArray(parsed.data) ? parsed.data : [parsed.data];
    })
    .meta({ description: 'Runs of other tasks ending in the given statuses make runs of this one (chaining).', ...afterEditorShape });
}

export function resolveAfter(list: z.output<typeof afterList>): AfterTrigger[] {
  return list.map((a) => ({ task: a.task, status: a.status ?? ['succeeded'] }));
}

// --- keys, for "did you mean" -------------------------------------------------------------

export const TRIGGER_KEYS: Readonly<Record<'webhook' | 'queue' | 'mongo' | 'after', readonly string[]>> = {
  webhook: Object.keys(webhookSchema.unwrap().shape),
  queue: Object.keys(queueSchema.shape),
  mongo: Object.keys(mongoSchema.shape),
  after: Object.keys(afterItem.shape),
};

// --- checks across keys and tasks, on the data as parsed ------------------------------------

/** Where the task's maxPayload comes from, for messages. */
export interface Payload {
  readonly bytes: number;
  readonly origin: string;
}

const sizeOf = (v: unknown): number | undefined => (typeof v === 'string' || typeof v === 'number' ? parseSizeBytes(v) : undefined);
const blank = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'string' && v.trim() === '');

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
      message: 'auth: none accepts unsigned requests, so this secret would never be checked: remove secret, or remove auth: none to require signed requests',
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

/** Two consumers of one queue split its jobs between them: each job would run only one task. */
export function queueClashFindings(tasks: Record<string, unknown>): Finding[] {
  const owners = new Map<string, string>();
  const findings: Finding[] = [];
  for (const [name, task] of Object.entries(tasks)) {
    if (!isMap(task) || !isMap(task.queue) || typeof task.queue.name !== 'string') continue;
    const q = task.queue;
    const redis = typeof q.redis === 'string' ? q.redis.trim() : '';
    const prefix = typeof q.prefix === 'string' && q.prefix.trim() !== '' ? q.prefix.trim() : QUEUE_DEFAULTS.prefix;
    const id = JSON.stringify([redis, prefix, (q.name as string).trim()]);
    const owner = owners.get(id);
    if (owner === undefined) {
      owners.set(id, name);
      continue;
    }
    const where = redis === '' ? "runlet's own Redis" : 'the same Redis';
    findings.push({
      path: ['tasks', name, 'queue', 'name'],
      at: 'value',
      message:
        `queue ${got(q.name)} in ${where} is already the trigger of task "${owner}": the two tasks would take each other's jobs, so each job would run only one of them; ` +
        `give each task its own queue, or chain this one with after: { task: ${owner} }`,
    });
  }
  return findings;
}
