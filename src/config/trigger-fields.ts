import { z } from 'zod';
import { got } from './describe.js';
import { expected, fail, type Issue } from './fields.js';

/** Value shapes shared by the trigger keys of a task (webhook.ts, queue.ts, mongo.ts, after.ts). */

export function mapOf(example: string) {
  return (iss: Issue) => (iss.code === 'invalid_type' ? `expected a map like ${example}, got ${got(iss.input)}` : undefined);
}

/** Like `expected`, but a key left out is named as missing, with what to write. */
export function required(what: string, add: string) {
  return (iss: Issue) =>
    iss.code === 'invalid_type' && iss.input === undefined ? `required key is missing: add ${add}` : expected(what)(iss);
}

/**
 * A list of words, also written as one string (`operations: insert`), or comma-separated,
 * which is what `${VAR}` yields. Each word is checked by `check` (message, or the word as
 * stored); a word listed twice is a mistake worth saying.
 */
export function wordListField(
  description: string,
  what: string,
  check: (word: string) => { word: string } | { problem: string },
  minOne: string | undefined,
) {
  return z
    .union([z.string(), z.array(z.string({ error: expected(what) }))], { error: expected(`${what}, or a list of them`) })
    .transform((value, ctx) => {
      const words =
        typeof value === 'string'
          ? value
              .split(',')
              .map((w) => w.trim())
              .filter((w) => w !== '')
          : value.map((w) => w.trim());
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

export function oneOf<const T extends readonly string[]>(choices: T, what: string) {
  return (word: string): { word: T[number] } | { problem: string } =>
    (choices as readonly string[]).includes(word)
      ? { word: word as T[number] }
      : { problem: `expected ${what} (${choices.join(', ')}), got ${got(word)}` };
}
