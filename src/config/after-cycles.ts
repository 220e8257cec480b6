import { got, isMap } from './describe.js';
import { closest } from './did-you-mean.js';
import type { Finding } from './errors.js';
import type { KeyPath } from './yaml-source.js';

/**
 * `after:` across tasks: each must name a task of the file, and no chain may come back to
 * where it started, since every run would then trigger the next one forever.
 */

interface Edge {
  /** The task whose runs ending trigger `to`. */
  readonly from: string;
  readonly to: string;
}

/** The `after:` entries of a task as parsed (one map or a list), each with its key path. */
function entriesOf(name: string, task: unknown): { path: KeyPath; task: unknown }[] {
  if (!isMap(task)) return [];
  const at: KeyPath = ['tasks', name, 'after'];
  if (Array.isArray(task.after)) return task.after.map((e, i) => ({ path: [...at, i], task: isMap(e) ? e.task : undefined }));
  return isMap(task.after) ? [{ path: at, task: task.after.task }] : [];
}

export function afterFindings(tasks: Record<string, unknown>): Finding[] {
  const names = Object.keys(tasks);
  const findings: Finding[] = [];
  const edges: Edge[] = [];
  for (const name of names) {
    for (const entry of entriesOf(name, tasks[name])) {
      if (typeof entry.task !== 'string') continue;
      const target = entry.task.trim();
      if (names.includes(target)) {
        edges.push({ from: target, to: name });
        continue;
      }
      const hint = closest(target, names);
      findings.push({
        path: [...entry.path, 'task'],
        at: 'value',
        message: `unknown task ${got(target)}${hint ? ` (did you mean "${hint}"?)` : ''}, so this trigger could never fire; tasks: ${names.join(', ')}`,
      });
    }
  }
  for (const loop of chainLoops(names, edges)) {
    findings.push({
      path: ['tasks', loop[0], 'after'],
      at: 'key',
      message: `chaining loop: ${[...loop, loop[0]].join(' → ')} (each run would trigger the next forever); remove one after:`,
    });
  }
  return findings;
}

/** Enough to fix a file; a pathological one could hold exponentially many. */
const MAX_LOOPS = 20;

/**
 * Every elementary cycle once, as task names in trigger order, starting at its task that
 * comes first in the file: for each start, only paths through later tasks are searched, so
 * a cycle is only found from its first task.
 */
export function chainLoops(names: readonly string[], edges: readonly Edge[]): string[][] {
  const order = new Map(names.map((n, i) => [n, i]));
  const next = new Map<string, string[]>();
  for (const e of edges) {
    const list = next.get(e.from) ?? [];
    if (!list.includes(e.to)) list.push(e.to);
    next.set(e.from, list);
  }
  const loops: string[][] = [];
  for (const start of names) {
    const first = order.get(start)!;
    const path: string[] = [start];
    const walk = (node: string): void => {
      for (const to of next.get(node) ?? []) {
        if (loops.length >= MAX_LOOPS) return;
        if (to === start) loops.push([...path]);
        else if (order.get(to)! > first && !path.includes(to)) {
          path.push(to);
          walk(to);
          path.pop();
        }
      }
    };
    walk(start);
  }
  return loops;
}
