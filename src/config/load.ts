import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, displayFile, formatIssue, formatPath } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { deepFreeze } from './freeze.js';
import { buildConfig, crossCheck } from './resolve.js';
import type { Finding } from './errors.js';
import { interpolateValues, keepNumberSpelling } from './scalars.js';
import { ConfigSchema } from './schema.js';
import type { RunletConfig } from './types.js';
import {
  duplicateKeyProblems,
  lineCol,
  MAX_ALIAS_COUNT,
  nestingProblem,
  offsetOf,
  parseYaml,
  syntaxProblems,
  unresolvedAliasProblems,
} from './yaml-source.js';
import type { KeyPath, Problem } from './yaml-source.js';
import { zodFindings } from './zod-issues.js';

/**
 * Reads runlet.yaml at start-up (the caller, cli.ts, passes the result on) and again on a
 * reload (daemon/reload.ts). `env` is what `${VAR}` reads; it defaults to the daemon's
 * environment.
 * @throws ConfigError listing every problem in the file.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): RunletConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? `no such file (looked for ${path.resolve(file)})` : e.message;
    throw new ConfigError([{ file: displayFile(file), line: 0, col: 0, path: '', message: `cannot read the config file: ${why}` }]);
  }
  return parseConfig(text, file, env);
}

/** `loadConfig` on text already in hand; `file` places messages and anchors `build:` paths. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): RunletConfig {
  const shownFile = displayFile(file);
  const absFile = path.resolve(file);
  const deep = nestingProblem(text);
  if (deep) {
    const before = text.slice(0, deep.offset).split('\n');
    const col = before.at(-1)!.length + 1;
    throw new ConfigError([{ file: shownFile, line: before.length, col, path: '', message: deep.message }]);
  }
  const source = parseYaml(text);
  const toIssue = (p: Problem): ConfigIssue => ({
    file: shownFile,
    ...lineCol(source, p.offset),
    path: formatPath(p.path),
    message: p.message,
  });
  const place = (f: Finding): Problem => ({ path: f.path, offset: offsetOf(source, f.path, f.at), message: f.message });

  // A broken document gives nonsense nodes; anything said about them would be noise.
  const syntax = syntaxProblems(source);
  const fatal = syntax.length > 0 ? syntax : unresolvedAliasProblems(source);
  if (fatal.length > 0) throw new ConfigError(inFileOrder(fatal.map(toIssue)));

  const problems = duplicateKeyProblems(source);
  keepNumberSpelling(source);
  const interpolation = interpolateValues(source, env);
  problems.push(...interpolation.problems);

  let raw: unknown;
  try {
    raw = source.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // yaml refuses, e.g., alias chains that expand exponentially (a "billion laughs" file).
    problems.push({ path: [], offset: 0, message: `cannot read the YAML: ${(err as Error).message}` });
    throw new ConfigError(inFileOrder(problems.map(toIssue)));
  }

  const parsed = ConfigSchema.safeParse(raw);
  const findings = [...(parsed.success ? [] : zodFindings(parsed.error)), ...crossCheck(raw, path.dirname(absFile))];
  // A value whose ${VAR} failed still holds the raw text; its complaints are already reported.
  const failed = interpolation.failed;
  problems.push(...findings.filter((f) => !failed.some((p) => isWithin(f.path, p))).map(place));

  if (problems.length > 0 || !parsed.success) throw new ConfigError(inFileOrder(problems.map(toIssue)));
  return deepFreeze(buildConfig(parsed.data, absFile));
}

function isWithin(inner: KeyPath, outer: KeyPath): boolean {
  return outer.length <= inner.length && outer.every((seg, i) => seg === inner[i]);
}

/** Sorted by position (stable, so one spot's issues keep their order), exact repeats dropped. */
function inFileOrder(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => a.issue.line - b.issue.line || a.issue.col - b.issue.col || a.i - b.i)
    .map(({ issue }) => issue)
    .filter((issue) => {
      const key = formatIssue(issue);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}
