import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { parseConfig } from '../src/config/load.js';

/**
 * 10,000 generated and mutated runlet.yaml files: each must end in a valid config or a
 * ConfigError (never another exception: a crash, a stack overflow, a TypeError), each within
 * a second. Seeded, so a failure reproduces: RUNLET_FUZZ_SEED=<the printed seed>.
 *
 * "Within a second" is counted in this process's CPU time, not wall time: what the cap
 * catches is work that explodes with the input (aliases expanded, nesting recursed), and
 * CPU time measures that whatever else the machine runs. Wall time under `npm test`'s
 * parallel files and a loaded CI box stretched a 0.36 s parse past a second.
 */
const COUNT = Number(process.env.RUNLET_FUZZ_COUNT ?? 10_000);
const PER_FILE_MS = 1_000;
const SEED = Number(process.env.RUNLET_FUZZ_SEED ?? Date.now() % 2 ** 31);

/** mulberry32: small, fast, good enough to spread inputs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE = `defaults:
  image: runlet/busybox:local
  memory: 64m
  timeout: 10m
pools:
  heavy: { concurrency: 2, memory: 1g }
tasks:
  sync:
    command: [sh, -c, 'echo hi']
    schedule: "*/5 * * * *"
    env: { A: "1", URL: "\${URL:-http://x}" }
    secrets: { TOKEN: "\${TOKEN:-abcdefgh}" }
    retries: { attempts: 3, backoff: exponential, delay: 5s }
  hook:
    pool: heavy
    webhook: { secret: "0123456789abcdef0123456789abcdef" }
    after: { task: sync, status: [succeeded] }
retention: { runs: 50, maxAge: 7d }
`;

const KEYS = [
  'tasks',
  'defaults',
  'image',
  'memory',
  'cpus',
  'timeout',
  'schedule',
  'env',
  'secrets',
  'command',
  'webhook',
  'after',
  'queue',
  'mongo',
  'http',
  'retries',
  'privileged',
  'volumes',
  'network',
  'pool',
  'pools',
  'node',
  '<<',
  '__proto__',
  'constructor',
];
const VALUES = [
  '',
  '~',
  'null',
  'true',
  '-1',
  '0',
  '1e309',
  'NaN',
  '.inf',
  '0x10',
  '"${X}"',
  '${',
  '[]',
  '{}',
  '[[[]]]',
  '*a',
  '&a x',
  '!!binary aGk=',
  '!!js/function x',
  '"\\u0000"',
  "'",
  '"',
  '|',
  '>',
  '? x',
  '- - -',
  '512m',
  '99999999999999999999g',
  '* * * * *',
  'host',
  '/var/run/docker.sock:/x',
];

type Gen = (r: () => number) => string;
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

const gens: Record<string, Gen> = {
  // The base file with a few lines changed: a key renamed, a value swapped for a wrong type,
  // a line dropped or doubled, indentation shifted, bytes inserted.
  mutated: (r) => {
    const lines = BASE.split('\n');
    for (let n = int(r, 1, 4); n > 0; n--) {
      const i = int(r, 0, lines.length - 1);
      const line = lines[i]!;
      switch (int(r, 0, 6)) {
        case 0:
          lines[i] = line.replace(/[A-Za-z]+:/, `${pick(r, KEYS)}:`);
          break;
        case 1:
          lines[i] = line.replace(/:\s.*$/, `: ${pick(r, VALUES)}`);
          break;
        case 2:
          lines.splice(i, 1);
          break;
        case 3:
          lines.splice(i, 0, line);
          break;
        case 4:
          lines[i] = ' '.repeat(int(r, 0, 6)) + line.trimStart();
          break;
        case 5: {
          const at = int(r, 0, line.length);
          lines[i] =
            line.slice(0, at) + String.fromCharCode(...Array.from({ length: int(r, 1, 4) }, () => int(r, 0, 0xffff))) + line.slice(at);
          break;
        }
        default:
          lines[i] = line.slice(0, int(r, 0, line.length));
      }
    }
    return lines.join('\n');
  },
  // Nesting thousands deep, in flow and block style, in a value and at the top.
  deep: (r) => {
    const depth = int(r, 100, 5_000);
    const where = pick(r, ['top', 'env', 'command']);
    const nest = r() < 0.5 ? '['.repeat(depth) + ']'.repeat(depth) : '{a: '.repeat(depth) + '1' + '}'.repeat(depth);
    if (where === 'top') return nest;
    if (r() < 0.5) return `tasks:\n  t:\n    image: x\n    ${where}: ${nest}\n`;
    let block = '';
    for (let i = 0; i < Math.min(depth, 400); i++) block += `${' '.repeat(4 + i)}k${i}:\n`;
    return `tasks:\n  t:\n    image: x\n    ${where}:\n${block}`;
  },
  // Billion laughs: each level an alias list of the one before.
  laughs: (r) => {
    const levels = int(r, 3, 12);
    const width = int(r, 2, 12);
    const lines = ['a0: &a0 "lol"'];
    for (let i = 1; i <= levels; i++)
      lines.push(
        `a${i}: &a${i} [${Array(width)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    const where = pick(r, ['top', 'env', 'command', 'tasks']);
    if (where === 'top') lines.push(`tasks: *a${levels}`);
    else if (where === 'tasks') lines.push(`tasks: { t: { image: x, command: *a${levels} } }`);
    else lines.push(`tasks:\n  t:\n    image: x\n    ${where}: { X: *a${levels} }`);
    return lines.join('\n');
  },
  // Huge scalars, keys and lists.
  huge: (r) => {
    // Mostly tens of KB; one in a hundred is megabytes (yaml parses some 100k nodes a second here).
    const size = int(r, 1_000, r() < 0.01 ? 2_000_000 : 20_000);
    const big = 'x'.repeat(size);
    return pick(r, [
      `tasks:\n  t:\n    image: "${big}"\n`,
      `tasks:\n  ${big}: { image: x }\n`,
      `tasks:\n  t:\n    image: x\n    command: [${Array(Math.floor(Math.min(size, 10_000) / 2))
        .fill('a')
        .join(',')}]\n`,
      `tasks:\n  t:\n    image: x\n    env: { A: "${big}" }\n    secrets: { B: "${big}" }\n`,
      `tasks:\n  t:\n    image: x\n    memory: ${'9'.repeat(Math.min(size, 5000))}\n`,
      `# ${big}\ntasks: {}\n`,
    ]);
  },
  // Keys with values of every wrong type.
  types: (r) => {
    const lines = ['tasks:', '  t:', '    image: runlet/busybox:local'];
    for (let n = int(r, 1, 8); n > 0; n--) lines.push(`    ${pick(r, KEYS)}: ${pick(r, VALUES)}`);
    if (r() < 0.3) lines.unshift(`defaults: ${pick(r, VALUES)}`);
    return lines.join('\n');
  },
  // Random bytes, read as UTF-8 (invalid sequences become U+FFFD, as readFileSync does).
  bytes: (r) => Buffer.from(Array.from({ length: int(r, 0, 4096) }, () => int(r, 0, 255))).toString('utf8'),
};

describe('config loader fuzz', () => {
  it(
    `${COUNT} generated files: each a valid config or a ConfigError, each within ${PER_FILE_MS} ms of CPU (seed ${SEED})`,
    { timeout: 240_000 },
    () => {
      console.log(`config fuzz seed: ${SEED} (reproduce with RUNLET_FUZZ_SEED=${SEED})`);
      const r = prng(SEED);
      const names = Object.keys(gens);
      const outcomes: Record<string, { valid: number; invalid: number; slowestMs: number }> = {};
      const failures: string[] = [];
      const started = performance.now();
      for (let i = 0; i < COUNT; i++) {
        const kind = names[i % names.length]!;
        const text = gens[kind]!(r);
        const o = (outcomes[kind] ??= { valid: 0, invalid: 0, slowestMs: 0 });
        const t0 = process.cpuUsage();
        try {
          parseConfig(text, 'runlet.yaml', { URL: 'http://u' });
          o.valid++;
        } catch (err) {
          if (err instanceof ConfigError) o.invalid++;
          else failures.push(`#${i} (${kind}): ${(err as Error).name}: ${(err as Error).message.slice(0, 200)}`);
        }
        const used = process.cpuUsage(t0);
        const ms = (used.user + used.system) / 1000;
        o.slowestMs = Math.max(o.slowestMs, ms);
        if (process.env.RUNLET_FUZZ_TRACE) console.log(i, kind, text.length, Math.round(ms));
        if (ms > PER_FILE_MS) failures.push(`#${i} (${kind}): took ${Math.round(ms)} ms of CPU (${text.length} chars)`);
      }
      const total = Math.round(performance.now() - started);
      console.log(`config fuzz: ${COUNT} files in ${total} ms`, JSON.stringify(outcomes));
      expect(failures, `seed ${SEED}`).toEqual([]);
      // The generators reach both ends: some files are valid, most are not.
      expect(outcomes.mutated!.valid).toBeGreaterThan(0);
      expect(Object.values(outcomes).reduce((n, o) => n + o.invalid, 0)).toBeGreaterThan(COUNT / 2);
    },
  );
});
