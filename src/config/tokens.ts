import fs from 'node:fs';
import { z } from 'zod';
import { ConfigError, displayFile, formatPath } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { interpolateValues } from './scalars.js';
import { lineCol, offsetOf, parseYaml, syntaxProblems, unresolvedAliasProblems } from './yaml-source.js';

/**
 * The ops API's tokens and roles, from the file RUNLET_TOKENS_FILE names:
 *   tokens: [{ name: ops-alice, token: ${ALICE_TOKEN}, role: admin }]
 * Each role includes the ones before it: viewer (read everything but payloads, outputs and
 * logs), operator (also run, cancel, retry, pause, backfill, read logs and payloads), admin
 * (also reload the config and this file, reset a change stream).
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface ApiToken {
  /** Who holds it: recorded with every action (requestedBy, the audit stream). */
  readonly name: string;
  readonly token: string;
  readonly role: Role;
}

/** A token shorter than this is guessable; refused rather than warned about. */
export const MIN_TOKEN_LENGTH = 16;

const TokensSchema = z.strictObject({
  tokens: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$/, 'expected a name of letters, digits, "_", ".", "@" or "-"'),
        token: z.string().min(MIN_TOKEN_LENGTH, `a token must be at least ${MIN_TOKEN_LENGTH} characters`),
        role: z.enum(ROLES, { error: `expected one of ${ROLES.join(', ')}` }),
      }),
    )
    .min(1, 'list at least one token'),
});

/** @throws ConfigError naming file, line and column of every problem; a token's value is never quoted. */
export function loadTokens(file: string, env: NodeJS.ProcessEnv = process.env): ApiToken[] {
  const shown = displayFile(file);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file: shown, line: 0, col: 0, path: '', message: `cannot read the tokens file: ${(err as Error).message}` }]);
  }
  const source = parseYaml(text);
  const issue = (path: readonly (string | number)[], offset: number, message: string): ConfigIssue => ({
    file: shown,
    ...lineCol(source, offset),
    path: formatPath(path),
    message,
  });
  const fatal = [...syntaxProblems(source), ...unresolvedAliasProblems(source)];
  if (fatal.length > 0) throw new ConfigError(fatal.map((p) => issue(p.path, p.offset, p.message)));
  const interpolation = interpolateValues(source, env);
  const issues = interpolation.problems.map((p) => issue(p.path, p.offset, p.message));
  const parsed = TokensSchema.safeParse(source.doc.toJS({ maxAliasCount: 100 }));
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const path = i.path.map((s) => (typeof s === 'number' ? s : String(s)));
      issues.push(issue(path, offsetOf(source, path, 'value'), i.message));
    }
  } else {
    const seen = new Map<string, string>();
    parsed.data.tokens.forEach((t, i) => {
      const at = ['tokens', i];
      if (seen.has(t.token))
        issues.push(issue([...at, 'token'], offsetOf(source, [...at, 'token']), `the same token as ${seen.get(t.token)}`));
      seen.set(t.token, t.name);
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return parsed.data!.tokens;
}
