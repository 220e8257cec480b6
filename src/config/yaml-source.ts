import { Document, Lexer, LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Node, Pair, Scalar } from 'yaml';

/**
 * The YAML text kept next to its parsed nodes, so every problem found later (by zod, by
 * interpolation, by cross-checks) can be pinned to the line and column the user edits.
 */

export type KeyPath = readonly (string | number)[];

/** A problem at a byte offset of the text; load.ts turns offsets into line:col. */
export interface Problem {
  readonly path: KeyPath;
  readonly offset: number;
  readonly message: string;
}

export interface YamlSource {
  readonly text: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
}

/** Deepest flow nesting ([ and {) and widest indentation a config may have; no real config comes near. */
export const MAX_FLOW_DEPTH = 64;
export const MAX_INDENT = 256;
/** Aliases a document may expand (yaml's own default, set here so it stays so): a "billion laughs" file is refused. */
export const MAX_ALIAS_COUNT = 100;

/**
 * A nesting problem found before parsing: yaml composes nodes recursively, so a file nested
 * thousands deep (a few KB of "[[[[...") overflows the stack inside it and takes seconds to
 * fail. The lexer is iterative, so this check is linear in the text, whatever its depth.
 */
export function nestingProblem(text: string): { offset: number; message: string } | undefined {
  let offset = 0;
  let depth = 0;
  let lineStart = true;
  for (const token of new Lexer().lex(text)) {
    // Control tokens (document start, scalar marker, flow error end) take no place in the text.
    const control = token.length === 1 && (token === '\x02' || token === '\x1f' || token === '\x18' || token === '\ufeff');
    if (token === '[' || token === '{') {
      if (++depth > MAX_FLOW_DEPTH)
        return { offset, message: `YAML nested deeper than ${MAX_FLOW_DEPTH} levels of [ and {: no runlet setting needs that` };
    } else if (token === ']' || token === '}') depth = Math.max(0, depth - 1);
    if (lineStart && /^ +$/.test(token) && token.length > MAX_INDENT)
      return { offset, message: `YAML indented more than ${MAX_INDENT} columns: no runlet setting nests that deep` };
    if (!control) {
      lineStart = token === '\n' || token === '\r\n';
      offset += token.length;
    }
  }
  return undefined;
}

export function parseYaml(text: string): YamlSource {
  const lines = new LineCounter();
  // uniqueKeys off: duplicates are reported by findDuplicateKeys, with the key's path and
  // where the first one is, which yaml's own error doesn't say.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  return { text, doc, lines };
}

/** 1-based line and column of an offset. */
export function lineCol(source: YamlSource, offset: number): { line: number; col: number } {
  return source.lines.linePos(offset);
}

/**
 * Syntax errors, at most one per line: yaml often reports the same mistake once per token
 * (an unquoted cron expression starting with `*` gives one per star), which would bury
 * the one hint that matters.
 */
export function syntaxProblems(source: YamlSource): Problem[] {
  const seenLines = new Set<number>();
  const problems: Problem[] = [];
  for (const err of source.doc.errors) {
    const offset = err.pos[0];
    const { line } = lineCol(source, offset);
    if (seenLines.has(line)) continue;
    seenLines.add(line);
    problems.push({ path: [], offset, message: `YAML syntax error: ${err.message}${syntaxHint(lineText(source, line))}` });
  }
  return problems;
}

function lineText(source: YamlSource, line: number): string {
  const start = source.lines.lineStarts[line - 1] ?? 0;
  const end = source.lines.lineStarts[line] ?? source.text.length;
  return source.text.slice(start, end);
}

/** The two mistakes cron and `${VAR}` invite, since both collide with YAML syntax. */
function syntaxHint(line: string): string {
  if (/:\s*\*/.test(line) || /^\s*-\s*\*/.test(line)) {
    return ' (a value starting with * is a YAML alias: quote it, as in schedule: "*/5 * * * *")';
  }
  if (line.includes('${') && /[{[]/.test(line.replace(/\$\{[^}]*\}/g, ''))) {
    return ' (inside { } or [ ], quote values that use ${...}, as in { URL: "${URL}" })';
  }
  return '';
}

/** The string form of a map key, as zod and the user see it. */
function keyText(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

function deref(source: YamlSource, node: unknown): unknown {
  return isAlias(node) ? node.resolve(source.doc) : node;
}

/**
 * Offset to report a problem at `path`: the value's start (or its key's, for an empty
 * value or `at: 'key'`). A path that doesn't exist in the text (a missing key, or a value
 * inherited through an alias) falls back to the key of its nearest existing parent.
 */
export function offsetOf(source: YamlSource, path: KeyPath, at: 'value' | 'key' = 'value'): number {
  let node: unknown = deref(source, source.doc.contents);
  let parentKey: Node | undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    let keyNode: Node | undefined;
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p) === String(seg));
      if (!pair) break;
      keyNode = pair.key as Node;
      next = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      next = node.items[seg];
      keyNode = next as Node;
    } else {
      break;
    }
    const last = i === path.length - 1;
    if (last) {
      const valueNode = next as Node | null;
      const empty =
        !valueNode || (isScalar(valueNode) && valueNode.value === null && (valueNode.range?.[0] ?? 0) === (valueNode.range?.[1] ?? 0));
      if (at === 'key' || empty) return startOf(keyNode) ?? 0;
      return startOf(valueNode) ?? startOf(keyNode) ?? 0;
    }
    parentKey = keyNode;
    node = deref(source, next);
  }
  return startOf(parentKey) ?? startOf(source.doc.contents) ?? 0;
}

function startOf(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range ? range[0] : undefined;
}

/** Calls `fn` for every value scalar (not keys) with its key path; aliases are skipped, their anchor is visited. */
export function forEachValueScalar(source: YamlSource, fn: (node: Scalar, path: KeyPath) => void): void {
  const visit = (node: unknown, path: KeyPath): void => {
    if (isMap(node)) for (const pair of node.items) visit(pair.value, [...path, keyText(pair)]);
    else if (isSeq(node)) node.items.forEach((item, i) => visit(item, [...path, i]));
    else if (isScalar(node)) fn(node, path);
  };
  visit(source.doc.contents, []);
}

/**
 * Keys set twice in one map. YAML would keep one silently, so a user editing the first
 * `schedule:` would wonder why nothing changes.
 */
export function duplicateKeyProblems(source: YamlSource): Problem[] {
  const problems: Problem[] = [];
  const visit = (node: unknown, path: KeyPath): void => {
    if (isMap(node)) {
      const first = new Map<string, Pair>();
      for (const pair of node.items) {
        const key = keyText(pair);
        const earlier = first.get(key);
        if (earlier) {
          const { line } = lineCol(source, startOf(earlier.key) ?? 0);
          problems.push({
            path: [...path, key],
            offset: startOf(pair.key) ?? 0,
            message: `duplicate key ${JSON.stringify(key)} (first set on line ${line}; YAML would keep only one of them)`,
          });
        } else {
          first.set(key, pair);
        }
        visit(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, [...path, i]));
    }
  };
  visit(source.doc.contents, []);
  return problems;
}

/** `*name` with no `&name` before it: yaml only notices when converting, by throwing. */
export function unresolvedAliasProblems(source: YamlSource): Problem[] {
  const problems: Problem[] = [];
  const visit = (node: unknown, path: KeyPath): void => {
    if (isAlias(node)) {
      if (node.resolve(source.doc) === undefined) {
        problems.push({
          path,
          offset: startOf(node) ?? 0,
          message: `unknown alias *${node.source}: quote the value if * is meant literally ("*${node.source}"), or set &${node.source} on a value before it`,
        });
      }
    } else if (isMap(node)) {
      for (const pair of node.items) visit(pair.value, [...path, keyText(pair)]);
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, [...path, i]));
    }
  };
  visit(source.doc.contents, []);
  return problems;
}
