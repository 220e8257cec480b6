import path from 'node:path';
import type { KeyPath } from './yaml-source.js';

/**
 * A problem found by a check that spans keys (cross-field rules, trigger clashes, loops),
 * placed at a key path; `load.ts` turns it into a ConfigIssue with line and column.
 */
export interface Finding {
  readonly path: KeyPath;
  readonly at: 'key' | 'value';
  readonly message: string;
}

/** One problem in a config file, placed where the user has to edit it. */
export interface ConfigIssue {
  /** The file as shown to the user (see `displayFile`). */
  readonly file: string;
  /** 1-based; 0 when the problem has no place in the text (the file can't be read). */
  readonly line: number;
  readonly col: number;
  /** Dotted key path (`tasks.archive.memory`, `tasks.a.command[1]`); '' for YAML syntax. */
  readonly path: string;
  readonly message: string;
}

/**
 * Everything wrong with a config file at once, so a user fixes it in one pass instead of
 * one restart per mistake. The message is the issues, one per line, in file order.
 */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** `runlet.yaml:14:5 tasks.archive.memory: expected a size like "512m", got "lots"` */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.col}` : `${issue.file}:`;
  return issue.path === '' ? `${where} ${issue.message}` : `${where} ${issue.path}: ${issue.message}`;
}

/**
 * The path as the user would type it: relative to the working directory when the file is
 * inside it (editors and terminals make `config/runlet.yaml:3:5` clickable), else the bare
 * name, since a long absolute path buries the line number.
 */
export function displayFile(file: string, cwd: string = process.cwd()): string {
  const rel = path.relative(cwd, path.resolve(cwd, file));
  if (rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)) return rel;
  return path.basename(file);
}

/** `tasks.a.command[1]`: indices in brackets, as in the editor's breadcrumbs. */
export function formatPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}
