import { interpolate } from './interpolate.js';
import { forEachValueScalar } from './yaml-source.js';
import type { KeyPath, Problem, YamlSource } from './yaml-source.js';

/**
 * Rewrites of value scalars in the parsed document, done in place before validation so
 * zod sees what the task will get, while each node keeps its position for messages.
 */

/**
 * Replaces `${VAR}` in every string value. Returns the problems, each at the `${` that
 * failed, and the paths that failed, so the validator's complaints about the same value
 * (which it would see still holding `${...}`) can be dropped as noise.
 */
export function interpolateValues(source: YamlSource, env: NodeJS.ProcessEnv): { problems: Problem[]; failed: KeyPath[] } {
  const problems: Problem[] = [];
  const failed: KeyPath[] = [];
  forEachValueScalar(source, (node, path) => {
    if (typeof node.value !== 'string' || !node.value.includes('$')) return;
    const result = interpolate(node.value, env);
    if (result.ok) {
      node.value = result.value;
      return;
    }
    failed.push(path);
    const [start, end] = node.range ?? [0, 0];
    const raw = source.text.slice(start, end);
    for (const err of result.errors) {
      problems.push({ path, offset: start + offsetInSource(node.value, raw, err.index, err.token), message: err.message });
    }
  });
  return { problems, failed };
}

/**
 * Where the `${` at `index` of the parsed value sits in the scalar's source text. Quotes
 * and escapes shift offsets, so find the same occurrence of the token in the source
 * instead; if it can't be found (an escape inside it), point at the scalar itself.
 */
function offsetInSource(value: string, raw: string, index: number, token: string): number {
  let nth = 0;
  for (let i = value.indexOf(token); i !== -1 && i < index; i = value.indexOf(token, i + 1)) nth++;
  let at = raw.indexOf(token);
  for (let k = 0; k < nth && at !== -1; k++) at = raw.indexOf(token, at + 1);
  return at === -1 ? 0 : at;
}

/**
 * Env values and command arguments are strings to the container, so a number is kept as
 * it was typed: `VERSION: 1.10` must stay "1.10", not become "1.1"; `[sleep, 0x10]` stays "0x10".
 */
export function keepNumberSpelling(source: YamlSource): void {
  forEachValueScalar(source, (node, path) => {
    const inTaskEnv = path.length === 4 && path[0] === 'tasks' && path[2] === 'env';
    const inTaskCommand = path.length === 4 && path[0] === 'tasks' && path[2] === 'command';
    if ((inTaskEnv || inTaskCommand) && typeof node.value === 'number' && node.type === 'PLAIN' && node.source) {
      node.value = node.source;
    }
  });
}
