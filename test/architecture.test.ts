import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layers of src/, lowest first; docs/architecture.md ("Code map") argues the order. A
 * module may import from its own folder and from any lower layer, never from a higher one
 * or a sibling on the same rank: that is what keeps a trigger from talking to Docker and
 * the run store from knowing who reads it.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['lib', 'redis'],
  ['config'],
  ['runtime', 'runs'],
  ['dispatch'],
  ['triggers'],
  ['ops'],
  ['alerts'],
  ['http'],
  ['daemon'],
  ['cli'],
];

const SRC = resolve(__dirname, '../src');

function rankOf(folder: string): number {
  const rank = LAYERS.findIndex((names) => names.includes(folder));
  if (rank < 0) throw new Error(`src/${folder} is in no layer: add it to LAYERS here and to the code map in docs/architecture.md`);
  return rank;
}

/** `src/runs/store.ts` → `runs`; `src/daemon.ts` → `daemon`; `src/cli.ts` and `src/cli/*` → `cli`. */
function folderOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes('/') ? rel.split('/')[0]! : rel.replace(/\.ts$/, '');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every relative module a file imports or re-exports, static or dynamic, type-only included. */
export function importsOf(file: string, text: string): string[] {
  const specifiers = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s+['"]([^'"]+)['"]/g),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...text.matchAll(/(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g),
  ].map((m) => m[1]!);
  return specifiers.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s).replace(/\.js$/, '.ts'));
}

export interface Edge {
  readonly from: string;
  readonly to: string;
}

export function backwardEdges(edges: readonly Edge[]): string[] {
  return edges
    .filter((e) => folderOf(e.from) !== folderOf(e.to) && rankOf(folderOf(e.to)) >= rankOf(folderOf(e.from)))
    .map((e) => `${relative(SRC, e.from)} → ${relative(SRC, e.to)} (${folderOf(e.from)} may not import ${folderOf(e.to)})`);
}

/** Each strongly connected set of more than one file (Tarjan), as a readable loop. */
export function cycles(edges: readonly Edge[]): string[] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const members: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        members.push(relative(SRC, w));
      } while (w !== v);
      if (members.length > 1) found.push(members.sort().join(' ↔ '));
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
}

function srcEdges(): Edge[] {
  return sourceFiles(SRC).flatMap((from) => importsOf(from, readFileSync(from, 'utf8')).map((to) => ({ from, to })));
}

describe('the shape of src/: imports point down the layers, and nothing imports itself back', () => {
  const edges = srcEdges();

  it('reads the imports (the walk sees the daemon wiring every layer)', () => {
    expect(edges.length).toBeGreaterThan(300);
    const daemonImports = new Set(edges.filter((e) => folderOf(e.from) === 'daemon').map((e) => folderOf(e.to)));
    expect([...daemonImports].sort()).toEqual(expect.arrayContaining(['dispatch', 'http', 'runs', 'runtime', 'triggers']));
  });

  it('no module imports from its own layer or a higher one in another folder', () => {
    expect(backwardEdges(edges)).toEqual([]);
  });

  it('no import cycle, type-only imports included', () => {
    expect(cycles(edges)).toEqual([]);
  });

  it('would catch a backward import and a cycle (checked on a made-up graph)', () => {
    const f = (p: string) => join(SRC, p);
    expect(backwardEdges([{ from: f('runs/store.ts'), to: f('dispatch/enqueue.ts') }])).toEqual([
      'runs/store.ts → dispatch/enqueue.ts (runs may not import dispatch)',
    ]);
    expect(backwardEdges([{ from: f('runs/store.ts'), to: f('runtime/labels.ts') }])).toHaveLength(1);
    expect(backwardEdges([{ from: f('dispatch/enqueue.ts'), to: f('runs/store.ts') }])).toEqual([]);
    expect(
      cycles([
        { from: f('config/a.ts'), to: f('config/b.ts') },
        { from: f('config/b.ts'), to: f('config/a.ts') },
      ]),
    ).toEqual(['config/a.ts ↔ config/b.ts']);
    expect(
      importsOf(
        f('x/y.ts'),
        "import type { A } from '../runs/types.js';\nexport { b } from './b.js';\nconst m = await import('../lib/c.js');",
      ),
    ).toEqual([f('runs/types.ts'), f('x/b.ts'), f('lib/c.ts')]);
  });
});
