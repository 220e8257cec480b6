import type { FunctionRoute, TaskConfig } from '../../config/types.js';

/**
 * Which function a request reaches: the routes of every task with `http:`, matched by
 * segments. At each segment a literal beats a `:param` (API Gateway picks the most specific
 * route), and a route's own method beats ANY. Validation refuses two tasks claiming one
 * route, so a match names one task.
 */
export interface RouteMatch {
  readonly task: TaskConfig;
  readonly route: FunctionRoute;
  readonly params: Record<string, string>;
}

interface Compiled {
  readonly task: TaskConfig;
  readonly route: FunctionRoute;
  readonly segments: readonly string[];
}

const tables = new WeakMap<object, Compiled[]>();

/** Compiled once per config object: a reload puts a new one in place, and so new routes. */
function tableOf(tasks: Readonly<Record<string, TaskConfig>>): Compiled[] {
  let table = tables.get(tasks);
  if (!table) {
    table = [];
    for (const task of Object.values(tasks))
      for (const route of task.http?.routes ?? []) table.push({ task, route, segments: splitPath(route.path) });
    tables.set(tasks, table);
  }
  return table;
}

const splitPath = (p: string): string[] => (p === '/' ? [] : p.slice(1).split('/'));

/** Lower is more specific: literals before parameters, segment by segment. */
function specificity(c: Compiled): string {
  return c.segments.map((s) => (s.startsWith(':') ? '1' : '0')).join('') + (c.route.method === 'ANY' ? '1' : '0');
}

function decode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

function paramsOf(c: Compiled, parts: readonly string[]): Record<string, string> | undefined {
  if (c.segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const seg = c.segments[i]!;
    if (seg.startsWith(':')) {
      const value = decode(parts[i]!);
      if (value === undefined || value === '') return undefined;
      params[seg.slice(1)] = value;
    } else if (seg !== parts[i]) return undefined;
  }
  return params;
}

/** Every route whose path matches, most specific first (any method). */
export function routesForPath(tasks: Readonly<Record<string, TaskConfig>>, path: string): RouteMatch[] {
  const parts = splitPath(path);
  const out: Array<RouteMatch & { rank: string }> = [];
  for (const c of tableOf(tasks)) {
    const params = paramsOf(c, parts);
    if (params) out.push({ task: c.task, route: c.route, params, rank: specificity(c) });
  }
  return out.sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0)).map(({ rank: _rank, ...m }) => m);
}

/** The route a request takes, or undefined when its path or method has none. */
export function matchRoute(tasks: Readonly<Record<string, TaskConfig>>, method: string, path: string): RouteMatch | undefined {
  return routesForPath(tasks, path).find((m) => m.route.method === method || m.route.method === 'ANY');
}
