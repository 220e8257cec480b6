import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYamlText } from 'yaml';
import { z } from 'zod';
import { got, isMap } from './describe.js';
import { withHints } from './editor-hints.js';
import type { Finding } from './errors.js';
import { choiceField, durationField, expected, fail, textField } from './fields.js';
import { mapOf, wordListField } from './trigger-fields.js';
import type { FunctionRoute, HttpFunctionConfig } from './types.js';
import { parseDurationMs } from './units.js';
import { rateLimitField, secretField } from './webhook.js';
import type { KeyPath } from './yaml-source.js';

/**
 * `http:` on a task: the task is an HTTP function, served on the functions listener
 * (RUNLET_FN_PORT) at its routes. Its schema, the defaults merged in, and the checks that
 * span keys (auth and its credentials) or tasks (two tasks claiming one route).
 */

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'ANY'] as const;
export const HTTP_AUTH = ['none', 'bearer', 'apiKeys'] as const;

export const HTTP_DEFAULTS = {
  /** API Gateway HTTP APIs' own ceiling for an integration. */
  timeout: '30s',
  corsMaxAge: '10m',
  corsHeaders: ['content-type', 'authorization', 'x-api-key'],
} as const;

/** A path segment: RFC 3986 pchar without "%"-escapes' ambiguity, or `:name` for a parameter. */
const STATIC_SEGMENT = /^[A-Za-z0-9._~!$&'()*+,;=@-]+$/;
const PARAM_SEGMENT = /^:[A-Za-z_][A-Za-z0-9_]*$/;

/** "GET /users/:id" → its parts, or what is wrong with it. */
export function parseRoute(text: string): FunctionRoute | { problem: string } {
  const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(text);
  const example = 'a route like "GET /users/:id" (a method, a space, a path)';
  if (!m) return { problem: `expected ${example}, got ${got(text)}` };
  const method = m[1]!.toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(method))
    return { problem: `unknown method ${got(m[1])} in ${got(text)}: use one of ${HTTP_METHODS.join(', ')}` };
  const p = m[2]!;
  if (!p.startsWith('/')) return { problem: `the path must start with "/", got ${got(p)}` };
  const segments = p === '/' ? [] : p.slice(1).split('/');
  const params: string[] = [];
  for (const seg of segments) {
    if (PARAM_SEGMENT.test(seg)) {
      if (params.includes(seg.slice(1))) return { problem: `path parameter ${seg} appears twice in ${got(p)}` };
      params.push(seg.slice(1));
    } else if (!STATIC_SEGMENT.test(seg)) {
      return {
        problem:
          seg === ''
            ? `empty segment in ${got(p)} (a doubled "/" or a trailing "/"): write the path without it`
            : `invalid path segment ${got(seg)} in ${got(p)}: letters, digits and -._~!$&'()*+,;=@, or :name for a parameter`,
      };
    }
  }
  return { method: method as FunctionRoute['method'], path: p, key: `${method} ${p}` };
}

/** Two routes answer the same requests when their methods meet and their paths match with parameter names ignored. */
function shapeOf(route: FunctionRoute): string {
  return route.path.replace(/:[A-Za-z0-9_]+/g, ':');
}

const routesField = withHints(
  z
    .union([z.string(), z.array(z.string({ error: expected('a route like "GET /users/:id"') }))], {
      error: expected('a list of routes like ["GET /users/:id"]'),
    })
    .transform((value, ctx) => {
      const list = typeof value === 'string' ? [value] : value;
      const out: FunctionRoute[] = [];
      list.forEach((text, i) => {
        const at = typeof value === 'string' ? [] : [i];
        const route = parseRoute(text);
        if ('problem' in route) return void fail(ctx, text, route.problem, at);
        const same = out.find(
          (r) => shapeOf(r) === shapeOf(route) && (r.method === route.method || r.method === 'ANY' || route.method === 'ANY'),
        );
        if (same) return void fail(ctx, text, `${got(text)} answers the same requests as ${got(same.key)}, listed before it`, at);
        out.push(route);
      });
      if (list.length === 0) fail(ctx, value, 'at least one route is needed, like "GET /hello"');
      return out;
    })
    .meta({
      description:
        'Routes the function answers, "METHOD /path" (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY); `:name` segments are path parameters (event.pathParameters.name).',
    }),
  { examples: [['GET /users/:id', 'POST /users']] },
);

/** A key name, as shown to the function; a key itself, a secret. */
const apiKeysField = z
  .record(z.string(), secretField, { error: mapOf('{ alice: ${ALICE_KEY} }') })
  .meta({ description: 'auth: apiKeys: consumer name → key, sent as x-api-key. Write ${VAR} to keep keys out of the file.' });

const corsSchema = z
  .strictObject(
    {
      origins: wordListField(
        'Origins allowed to call the function from a browser, like "https://tests.example"; "*" for any.',
        'an origin like "https://tests.example"',
        (w) =>
          w === '*' || /^https?:\/\/[^/\s]+$/.test(w)
            ? { word: w }
            : { problem: `expected an origin like "https://tests.example" (scheme and host, no path), got ${got(w)}` },
        'list at least one origin',
      ),
      methods: wordListField(
        "Methods a browser may use; default: the function's route methods.",
        'a method like "POST"',
        (w) =>
          (HTTP_METHODS as readonly string[]).includes(w.toUpperCase()) && w.toUpperCase() !== 'ANY'
            ? { word: w.toUpperCase() }
            : { problem: `expected a method (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS), got ${got(w)}` },
        undefined,
      ).optional(),
      headers: wordListField(
        `Request headers a browser may send; default ${HTTP_DEFAULTS.corsHeaders.join(', ')}.`,
        'a header name',
        (w) =>
          /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(w) ? { word: w.toLowerCase() } : { problem: `expected a header name, got ${got(w)}` },
        undefined,
      ).optional(),
      maxAge: durationField(`How long a browser may cache a preflight answer. Default ${HTTP_DEFAULTS.corsMaxAge}.`, 0, '0s').optional(),
    },
    { error: mapOf('{ origins: ["https://tests.example"] }') },
  )
  .meta({ description: 'CORS for browser clients; preflight (OPTIONS) is answered by runlet, without a container.' });

export const httpSchema = z.strictObject(
  {
    routes: routesField,
    auth: choiceField(
      'none: anyone who reaches the listener may call it (write it only to mean it). bearer: Authorization: Bearer <secret>, 401 otherwise. apiKeys: x-api-key must be one of apiKeys, 403 otherwise (API Gateway usage plans).',
      HTTP_AUTH,
    ),
    secret: secretField.optional(),
    apiKeys: apiKeysField.optional(),
    apiKeysFile: textField(
      'auth: apiKeys: a YAML file of consumer name → key, relative to this file, read at start and on reload.',
    ).optional(),
    rateLimit: z
      .strictObject({ perKey: rateLimitField.optional() }, { error: mapOf('{ perKey: 10/s }') })
      .meta({ description: 'auth: apiKeys: at most `perKey` requests per consumer per period, cluster-wide; more get 429.' })
      .optional(),
    cors: corsSchema.optional(),
    timeout: withHints(
      durationField(
        `How long a request waits for its run (queued and running) before 504; a run still queued then is cancelled. Default ${HTTP_DEFAULTS.timeout}.`,
        1_000,
        '1s',
      ).optional(),
      { default: HTTP_DEFAULTS.timeout },
    ),
  },
  { error: mapOf('{ routes: ["GET /hello"], auth: none }') },
);

export function httpField() {
  return withHints(
    httpSchema.meta({
      description:
        'Serve the task as an HTTP function on the functions listener (RUNLET_FN_PORT): each request is one run, its event in API Gateway HTTP API format 2.0, its output the response.',
    }),
    { examples: [{ routes: ['GET /hello'], auth: 'none' }] },
  );
}

export const HTTP_KEYS: readonly string[] = Object.keys(httpSchema.shape);

/** The keys of an apiKeysFile, or why it can't be used. */
export function readApiKeysFile(file: string, configDir: string): { keys: Record<string, string> } | { problem: string } {
  const abs = path.resolve(configDir, file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: `cannot read apiKeysFile ${got(file)} (${code === 'ENOENT' ? `no such file: ${abs}` : (err as Error).message})` };
  }
  let data: unknown;
  try {
    data = parseYamlText(text);
  } catch (err) {
    return { problem: `apiKeysFile ${abs} is not valid YAML: ${(err as Error).message.split('\n')[0]}` };
  }
  if (!isMap(data)) return { problem: `apiKeysFile ${abs} must be a map of consumer name → key, like "alice: k3y...", got ${got(data)}` };
  const keys: Record<string, string> = {};
  for (const [name, key] of Object.entries(data)) {
    // Never echoes a key: it is a secret.
    if (typeof key !== 'string' && typeof key !== 'number')
      return { problem: `apiKeysFile ${abs}: the key of ${got(name)} must be a string` };
    keys[name] = String(key);
  }
  return { keys };
}

const blank = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'string' && v.trim() === '');

/** Keys that are empty or shared by two consumers cannot say who is calling. */
function keyProblems(keys: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const owner = new Map<string, string>();
  if (Object.keys(keys).length === 0) problems.push('no keys are listed, so every request would be refused: list at least one consumer');
  for (const [name, key] of Object.entries(keys)) {
    if (typeof key !== 'string') continue;
    if (key.trim() === '') problems.push(`the key of ${got(name)} is empty (did its \${VAR} interpolate to nothing?)`);
    else if (owner.has(key)) problems.push(`${got(name)} has the same key as ${got(owner.get(key))}: each consumer needs its own key`);
    else owner.set(key, name);
  }
  return problems;
}

/** auth and the credentials it needs must agree; a request must never pass for lack of a key. */
export function httpFindings(at: KeyPath, t: Record<string, unknown>, configDir: string): Finding[] {
  if (!('http' in t) || !isMap(t.http)) return [];
  const h = t.http;
  const here: KeyPath = [...at, 'http'];
  const auth = typeof h.auth === 'string' ? h.auth.trim() : undefined;
  const findings: Finding[] = [];
  const push = (p: KeyPath, where: 'key' | 'value', message: string) => findings.push({ path: p, at: where, message });
  if (auth !== 'bearer' && h.secret !== undefined)
    push(
      [...here, 'secret'],
      'key',
      `secret is only used with auth: bearer, and auth is ${auth ?? 'not set'}: remove secret or write auth: bearer`,
    );
  if (auth === 'bearer' && blank(h.secret))
    push(
      here,
      'key',
      `auth: bearer needs a secret (the token callers send), and ${h.secret === undefined ? 'none is set' : 'it is empty'}: add secret: \${FN_TOKEN}`,
    );
  for (const k of ['apiKeys', 'apiKeysFile'] as const)
    if (auth !== 'apiKeys' && h[k] !== undefined)
      push([...here, k], 'key', `${k} is only used with auth: apiKeys: remove it or write auth: apiKeys`);
  if (auth !== 'apiKeys' && h.rateLimit !== undefined)
    push([...here, 'rateLimit'], 'key', 'rateLimit counts requests per API key, so it needs auth: apiKeys');
  if (auth === 'apiKeys') {
    if (h.apiKeys === undefined && h.apiKeysFile === undefined)
      push(here, 'key', 'auth: apiKeys needs the keys: add apiKeys: { alice: ${ALICE_KEY} } or apiKeysFile: keys.yaml');
    else if (h.apiKeys !== undefined && h.apiKeysFile !== undefined)
      push([...here, 'apiKeysFile'], 'key', 'set apiKeys or apiKeysFile, not both: the keys must have one home');
    else if (isMap(h.apiKeys)) for (const p of keyProblems(h.apiKeys)) push([...here, 'apiKeys'], 'key', p);
    else if (typeof h.apiKeysFile === 'string') {
      const read = readApiKeysFile(h.apiKeysFile, configDir);
      if ('problem' in read) push([...here, 'apiKeysFile'], 'value', read.problem);
      else for (const p of keyProblems(read.keys)) push([...here, 'apiKeysFile'], 'value', `in apiKeysFile: ${p}`);
    }
  }
  return findings;
}

/** Two tasks answering one request: which would run is a coin toss, so neither may. */
export function routeClashFindings(tasks: Record<string, unknown>): Finding[] {
  const claimed: Array<{ task: string; route: FunctionRoute }> = [];
  const findings: Finding[] = [];
  for (const [name, task] of Object.entries(tasks)) {
    if (!isMap(task) || !isMap(task.http)) continue;
    const routes = task.http.routes;
    const list = typeof routes === 'string' ? [routes] : Array.isArray(routes) ? routes : [];
    list.forEach((text, i) => {
      if (typeof text !== 'string') return;
      const route = parseRoute(text);
      if ('problem' in route) return;
      const other = claimed.find(
        (c) =>
          c.task !== name &&
          shapeOf(c.route) === shapeOf(route) &&
          (c.route.method === route.method || c.route.method === 'ANY' || route.method === 'ANY'),
      );
      if (other)
        findings.push({
          path: ['tasks', name, 'http', 'routes', ...(typeof routes === 'string' ? [] : [i])],
          at: 'value',
          message: `route ${got(route.key)} is already claimed by task "${other.task}" (${got(other.route.key)}): a request must reach one function; change one of the two`,
        });
      claimed.push({ task: name, route });
    });
  }
  return findings;
}

type RawHttp = z.output<typeof httpSchema>;

export function resolveHttp(h: RawHttp, configDir: string): HttpFunctionConfig {
  const fileKeys = h.apiKeysFile !== undefined ? readApiKeysFile(h.apiKeysFile, configDir) : undefined;
  // httpFindings refused an unreadable file before we got here.
  const apiKeys = h.apiKeys ?? (fileKeys && 'keys' in fileKeys ? fileKeys.keys : undefined);
  return {
    routes: h.routes,
    auth: h.auth,
    ...(h.auth === 'bearer' && h.secret !== undefined && { secret: h.secret }),
    ...(h.auth === 'apiKeys' && apiKeys !== undefined && { apiKeys }),
    ...(h.apiKeysFile !== undefined && { apiKeysFile: path.resolve(configDir, h.apiKeysFile) }),
    ...(h.rateLimit?.perKey !== undefined && { rateLimitPerKey: h.rateLimit.perKey }),
    ...(h.cors !== undefined && {
      cors: {
        origins: h.cors.origins,
        ...(h.cors.methods !== undefined && { methods: h.cors.methods }),
        headers: h.cors.headers ?? [...HTTP_DEFAULTS.corsHeaders],
        maxAgeMs: h.cors.maxAge ?? parseDurationMs(HTTP_DEFAULTS.corsMaxAge)!,
      },
    }),
    timeoutMs: h.timeout ?? parseDurationMs(HTTP_DEFAULTS.timeout)!,
  };
}
