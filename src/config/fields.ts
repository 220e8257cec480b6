import { z } from 'zod';
import { got } from './describe.js';
import { closest } from './did-you-mean.js';
import { withHints } from './editor-hints.js';
import { scheduleProblem, timezoneProblem } from './schedule.js';
import { DURATION_PATTERN, SIZE_PATTERN, formatBytes, parseDurationMs, parseSizeBytes } from './units.js';

/**
 * One zod schema per kind of value, each with its own human message. Every field reads
 * both the YAML type and the string an `${VAR}` turns into, since interpolation always
 * yields strings (`cpus: ${CPUS:-1}` is "1").
 *
 * Meta (description, pattern, bounds) and hints (examples) only feed the editor's JSON Schema;
 * patterns also accept any `${...}` because the editor sees the file before interpolation.
 */

export type Ctx = z.core.$RefinementCtx;
export type Issue = { readonly code?: string; readonly input?: unknown };

export function fail(ctx: Ctx, input: unknown, message: string, path: (string | number)[] = []): never {
  ctx.addIssue({ code: 'custom', input, message, path });
  return z.NEVER;
}

/** An error map for a wrong YAML type: "expected <what>, got <value>". */
export function expected(what: string) {
  return (iss: Issue) =>
    iss.code === 'invalid_type' || iss.code === 'invalid_union' ? `expected ${what}, got ${got(iss.input)}` : undefined;
}

/** Editors see the file before interpolation, so any `${...}` passes their pattern. */
export function editorPattern(core: string): string {
  return `^\\s*(?:${core})\\s*$|\\$\\{`;
}

const stringOrNumber = (what: string) => z.union([z.string(), z.number()], { error: expected(what) });

// --- sizes and durations ------------------------------------------------------------

const SIZE_EXAMPLE = 'a size like "512m"';

/** Docker refuses a memory limit under 6 MiB; saying so here beats a failed container start. */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

export function memoryField(description: string) {
  const schema = stringOrNumber(SIZE_EXAMPLE)
    .transform((value, ctx) => {
      const bytes = parseSizeBytes(value);
      if (bytes === undefined) return fail(ctx, value, `expected ${SIZE_EXAMPLE}, got ${got(value)}`);
      if (bytes < MIN_MEMORY_BYTES) {
        // A bare number is bytes, as in Docker; `memory: 256` almost always meant megabytes.
        const hint =
          typeof value === 'number' || /^\s*\d+\s*$/.test(value)
            ? ` (a bare number is bytes: write "${String(value).trim()}m" for megabytes)`
            : '';
        return fail(ctx, value, `must be at least ${formatBytes(MIN_MEMORY_BYTES)} (Docker's minimum), got ${got(value)}${hint}`);
      }
      return bytes;
    })
    .meta({ description, pattern: editorPattern(SIZE_PATTERN) });
  return withHints(schema, { examples: ['256m', '1g'] });
}

/** A size with no floor of Docker's, for limits on data (payloads), at least 1 KiB. */
export function sizeField(description: string) {
  const schema = stringOrNumber(SIZE_EXAMPLE)
    .transform((value, ctx) => {
      const bytes = parseSizeBytes(value);
      if (bytes === undefined) return fail(ctx, value, `expected ${SIZE_EXAMPLE}, got ${got(value)}`);
      if (bytes < 1024) return fail(ctx, value, `must be at least 1k, got ${got(value)}`);
      return bytes;
    })
    .meta({ description, pattern: editorPattern(SIZE_PATTERN) });
  return withHints(schema, { examples: ['256k', '1m'] });
}

const DURATION_EXAMPLE = 'a duration like "30s", "10m" or "2h"';

export function durationField(description: string, minMs: number, minText: string) {
  const schema = stringOrNumber(DURATION_EXAMPLE)
    .transform((value, ctx) => {
      // A bare number has no obvious unit (ms? s?); only 0 means the same in all of them.
      const ms = typeof value === 'number' ? (value === 0 ? 0 : undefined) : parseDurationMs(value);
      if (ms === undefined) {
        const hint = typeof value === 'number' ? ` (a number needs a unit: write "${value}s" or "${value}m")` : '';
        return fail(ctx, value, `expected ${DURATION_EXAMPLE}, got ${got(value)}${hint}`);
      }
      if (ms < minMs) return fail(ctx, value, `must be at least ${minText}, got ${got(value)}`);
      return ms;
    })
    .meta({ description, pattern: editorPattern(`${DURATION_PATTERN}|0`) });
  return withHints(schema, { examples: ['30s', '15m', '2h'] });
}

// --- numbers ------------------------------------------------------------------------

function toNumber(value: string | number): number | undefined {
  if (typeof value === 'number') return value;
  const s = value.trim();
  return /^\d+(?:\.\d+)?$|^\.\d+$/.test(s) ? Number(s) : undefined;
}

const CPUS_EXAMPLE = 'a number of CPUs like 0.5 or 2';
export const MAX_CPUS = 64;

export function cpusField(description: string) {
  const schema = stringOrNumber(CPUS_EXAMPLE)
    .transform((value, ctx) => {
      const cpus = toNumber(value);
      if (cpus === undefined) return fail(ctx, value, `expected ${CPUS_EXAMPLE}, got ${got(value)}`);
      if (!(cpus > 0 && cpus <= MAX_CPUS)) return fail(ctx, value, `must be more than 0 and at most ${MAX_CPUS}, got ${got(value)}`);
      return cpus;
    })
    .meta({ description, exclusiveMinimum: 0, maximum: MAX_CPUS, pattern: editorPattern('[0-9]*\\.?[0-9]+') });
  return withHints(schema, { examples: [0.5, 2] });
}

/** A whole number ≥ 1, e.g. `pids` or `retention.runs`. */
export function countField(description: string, what: string, example: number) {
  const expectation = `a whole number of ${what} like ${example}`;
  const schema = stringOrNumber(expectation)
    .transform((value, ctx) => {
      const n = toNumber(value);
      if (n === undefined || !Number.isInteger(n)) return fail(ctx, value, `expected ${expectation}, got ${got(value)}`);
      if (n < 1) return fail(ctx, value, `must be at least 1, got ${got(value)}`);
      return n;
    })
    .meta({ description, minimum: 1, pattern: editorPattern('[0-9]+') });
  return withHints(schema, { examples: [example] });
}

/** A whole number ≥ 0, e.g. `warm` (0 means none). */
export function wholeField(description: string, what: string, example: number) {
  const expectation = `a whole number of ${what} like ${example}`;
  const schema = stringOrNumber(expectation)
    .transform((value, ctx) => {
      const n = toNumber(value);
      if (n === undefined || !Number.isInteger(n)) return fail(ctx, value, `expected ${expectation}, got ${got(value)}`);
      return n;
    })
    .meta({ description, minimum: 0, pattern: editorPattern('[0-9]+') });
  return withHints(schema, { examples: [example] });
}

// --- strings ------------------------------------------------------------------------

/** One of a few fixed words (`backoff: exponential`), with a did-you-mean for a near miss. */
export function choiceField<const T extends readonly string[]>(description: string, choices: T) {
  const expectation = choices.map((c) => JSON.stringify(c)).join(' or ');
  const schema = z
    .string({ error: expected(expectation) })
    .transform((value, ctx) => {
      const word = value.trim();
      if ((choices as readonly string[]).includes(word)) return word as T[number];
      const guess = closest(word, choices);
      return fail(ctx, value, `expected ${expectation}, got ${got(value)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`);
    })
    .meta({ description, pattern: editorPattern(choices.join('|')) });
  return withHints(schema, { examples: [...choices] });
}

export function textField(description: string) {
  return z.string({ error: expected('a string') }).meta({ description });
}

// Docker's reference grammar, slightly simplified: optional registry host[:port], lowercase
// path components, optional tag and digest. Docker rejects uppercase repository names.
const IMAGE_REF =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::\w[\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const IMAGE_EXAMPLE = 'an image reference like "node:20-alpine" or "runlet/tasks:local"';

export function imageField(description: string) {
  const schema = z
    .string({ error: expected(IMAGE_EXAMPLE) })
    .transform((value, ctx) => {
      const ref = value.trim();
      if (!IMAGE_REF.test(ref)) {
        const hint = /[A-Z]/.test(ref) ? ' (repository names must be lowercase)' : '';
        return fail(ctx, value, `expected ${IMAGE_EXAMPLE}, got ${got(value)}${hint}`);
      }
      return ref;
    })
    .meta({ description });
  return withHints(schema, { examples: ['runlet/tasks:local', 'node:20-alpine'] });
}

export function scheduleField(description: string) {
  const schema = z
    .string({ error: expected('a cron expression like "0 3 * * *"') })
    .transform((value, ctx) => {
      const problem = scheduleProblem(value);
      return problem ? fail(ctx, value, problem) : value.trim();
    })
    .meta({ description });
  return withHints(schema, { examples: ['0 3 * * *', '*/30 * * * * *', '@hourly'] });
}

export function timezoneField(description: string) {
  const schema = z
    .string({ error: expected('an IANA time zone like "Europe/Vienna" or "UTC"') })
    .transform((value, ctx) => {
      const zone = value.trim();
      const problem = timezoneProblem(zone);
      return problem ? fail(ctx, value, problem) : zone;
    })
    .meta({ description });
  return withHints(schema, { examples: ['UTC', 'Europe/Vienna', 'America/New_York'] });
}

// --- lists and maps -----------------------------------------------------------------

/** Words a shell would not treat specially, so splitting on spaces is what the user meant. */
const PLAIN_WORDS = /^[\w./=:@%+,-]+(?:\s+[\w./=:@%+,-]+)*$/;

function commandMessage(input: unknown): string {
  if (typeof input !== 'string') return `expected a list like [node, archive.js], got ${got(input)}`;
  const text = input.trim();
  // Only suggest a split when it is unambiguous; with quotes or $ the guess would be the surprise.
  const words = PLAIN_WORDS.test(text) ? text.split(/\s+/) : undefined;
  const listForm = words ? `[${words.map((w) => (/^[:@%]/.test(w) ? JSON.stringify(w) : w)).join(', ')}]` : 'a list of arguments';
  return (
    `must be a list, not a string: runlet runs the command without a shell and won't guess how to split it, ` +
    `so quotes and spaces can't surprise you. Write ${listForm}, or [sh, -c, ${JSON.stringify(input)}] to use a shell`
  );
}

/** Numbers and booleans in a list or map are what the user typed (`[sleep, 5]`), so they become strings. */
const scalarAsString = (what: string) =>
  z.union([z.string(), z.number(), z.boolean()], { error: expected(what) }).transform((v) => String(v));

export function commandField(description: string) {
  const schema = z
    .array(scalarAsString('a string'), { error: (iss: Issue) => (iss.code === 'invalid_type' ? commandMessage(iss.input) : undefined) })
    .min(1, { error: "must not be empty (leave command out to use the image's own CMD)" })
    .meta({ description });
  return withHints(schema, {
    examples: [
      ['node', 'archive.js'],
      ['sh', '-c', 'echo hello'],
    ],
  });
}

/** An empty `NAME:` is null in YAML; say how to write the empty string it probably meant. */
const envValue = z
  .union([z.string(), z.number(), z.boolean()], {
    error: (iss: Issue) => {
      const hint = iss.input === null ? ' (write "" for an empty value)' : '';
      return `expected a string, number or boolean, got ${got(iss.input)}${hint}`;
    },
  })
  .transform((v) => String(v));

export function envField(description: string) {
  const schema = z
    .record(z.string(), envValue, {
      error: (iss: Issue) => (iss.code === 'invalid_type' ? `expected a map of NAME: value, got ${got(iss.input)}` : undefined),
    })
    .nullable()
    .meta({ description });
  return withHints(schema, { examples: [{ MONGO_URL: '${MONGO_URL}', LOG_LEVEL: 'info' }] });
}

// --- switches and isolation -----------------------------------------------------------

/** true/false, also as the strings an `${VAR}` yields ("true", "false"). */
export function boolField(description: string) {
  return z
    .union([z.boolean(), z.string()], { error: expected('true or false') })
    .transform((value, ctx) => {
      if (typeof value === 'boolean') return value;
      const v = value.trim().toLowerCase();
      if (v === 'true') return true;
      if (v === 'false') return false;
      return fail(ctx, value, `expected true or false, got ${got(value)}`);
    })
    .meta({ description });
}

// "1000", "1000:1000", "nobody", "nobody:nogroup": what Docker's --user takes.
const USER = /^(?:[0-9]+|[a-z_][a-z0-9_-]*)(?::(?:[0-9]+|[a-z_][a-z0-9_-]*))?$/;

export function userField(description: string) {
  const schema = stringOrNumber('a user like "1000:1000" or "nobody"')
    .transform((value, ctx) => {
      const user = String(value).trim();
      if (!USER.test(user)) return fail(ctx, value, `expected a user like "1000:1000" or "nobody", got ${got(value)}`);
      return user;
    })
    .meta({ description, pattern: editorPattern(USER.source.slice(1, -1)) });
  return withHints(schema, { examples: ['1000:1000', 'nobody'] });
}

// Docker network names; "host" and "container:<id>" are refused on purpose: both share a
// namespace with something outside the run, which the isolation defaults exist to prevent.
const NETWORK = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function networkField(description: string) {
  const schema = z
    .string({ error: expected('"none", "bridge" or the name of a Docker network') })
    .transform((value, ctx) => {
      const net = value.trim();
      if (net === 'host' || net.startsWith('container:')) {
        return fail(
          ctx,
          value,
          `network ${got(value)} would share a network namespace outside the run; use "none", "bridge" or a named network`,
        );
      }
      if (!NETWORK.test(net)) return fail(ctx, value, `expected "none", "bridge" or the name of a Docker network, got ${got(value)}`);
      return net;
    })
    .meta({ description });
  return withHints(schema, { examples: ['none', 'bridge'] });
}

/** What to do with a new run when the task is at its concurrency limit. */
export const OVERLAP_POLICIES = ['queue', 'bufferOne', 'skip', 'replace', 'allow'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

export function overlapField(description: string) {
  const schema = z
    .string({ error: expected(`one of ${OVERLAP_POLICIES.join(', ')}`) })
    .transform((value, ctx) => {
      const v = value.trim();
      if ((OVERLAP_POLICIES as readonly string[]).includes(v)) return v as OverlapPolicy;
      return fail(ctx, value, `expected one of ${OVERLAP_POLICIES.join(', ')}, got ${got(value)}`);
    })
    .meta({ description, enum: [...OVERLAP_POLICIES] });
  return withHints(schema, { examples: ['queue', 'skip'] });
}

/** A URL's scheme only, for messages: URLs carry passwords (a Slack webhook URL is itself a secret), and messages reach logs. */
export function schemeOf(url: string): string {
  const m = /^\s*([a-zA-Z][\w+.-]*:\/\/)/.exec(url);
  return m ? `a URL starting with "${m[1]}"` : 'a value that is not a URL';
}
