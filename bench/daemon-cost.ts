/**
 * What an idle daemon costs per declared task: the built CLI (`runlet start`) with a generated
 * config of N tasks (a daily cron schedule each), on a Redis of its own. Per N: start-up
 * (spawn → /healthz 200), RSS, CPU (every thread's schedstat) over an idle window from 5 s
 * after it answered and over one from 90 s (past start-up's one-off GCs), and the Redis
 * connections it holds (CLIENT LIST before and after it started). Beside them the
 * loaded-dependencies floor: a bare node process that imports the packages the daemon's code
 * imports statically. Then cron lateness: N per-minute schedules spread over the minute, the
 * tasks `suspended: true` so every tick is recorded (as `skipped`) without a container;
 * lateness = the record's createdAt − its scheduledAt.
 *
 *   node dist/bench/daemon-cost.js [--tasks 10,1000,10000] [--lateness 1000,10000] [--idle 30] [--timeout 60]
 *   (--lateness 0 leaves lateness out)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../src/lib/embedded-redis.js';
import { keys } from '../src/runs/keys.js';
import { listFlag, ms, numFlag, processRssBytes, processThreadsCpuSeconds, row, sleep, stats } from './lib.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST = dirname(HERE);
const CLI = join(DIST, 'src', 'cli.js');

/** The settled idle window starts this long after /healthz answered. */
const SETTLED_S = 90;

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

/** The packages dist/src imports statically (what a daemon has loaded once it answers). */
function daemonPackages(): string[] {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.js'))
        for (const m of readFileSync(p, 'utf8').matchAll(/^import [^;]*? from '([^'.][^']*)';/gm)) {
          const spec = m[1]!;
          if (spec.startsWith('node:')) continue;
          found.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
    }
  };
  walk(join(DIST, 'src'));
  return [...found].sort();
}

/** RSS of a bare node process that imported `packages`, measured after a GC-free pause. */
async function dependenciesFloor(packages: readonly string[]): Promise<number> {
  const code = `${packages.map((p) => `await import(${JSON.stringify(p)});`).join('')} setTimeout(() => {}, 60000); process.send?.('ready');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: dirname(DIST),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (c) => reject(new Error(`the floor process exited with ${c}`)));
    });
    await sleep(2000);
    return processRssBytes(child.pid!);
  } finally {
    child.kill('SIGKILL');
  }
}

function configFor(n: number, schedule: (i: number) => string, extra = ''): string {
  const lines = ['tasks:'];
  for (let i = 0; i < n; i++) lines.push(`  t${i}: { image: runlet/busybox:local, command: ["true"], schedule: "${schedule(i)}"${extra} }`);
  return lines.join('\n') + '\n';
}

async function countClients(redis: Redis): Promise<number> {
  const list = (await redis.client('LIST')) as string;
  return list.split('\n').filter((l) => l.trim() !== '').length;
}

interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  readonly startupMs: number | undefined;
  readonly output: () => string;
  stop(): Promise<void>;
}

let nextPort = 18600;

/** Spawns the built CLI; startupMs is undefined when /healthz did not answer 200 within timeoutMs. */
async function startCli(configFile: string, redisUrl: string, dataDir: string, timeoutMs: number): Promise<Started> {
  const port = nextPort++;
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, 'start', '-c', configFile], {
    env: {
      ...process.env,
      REDIS_URL: redisUrl,
      RUNLET_PORT: String(port),
      RUNLET_DATA: dataDir,
      RUNLET_LOG_LEVEL: 'warn',
      RUNLET_NODE: 'bench',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
  child.stderr!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
  let exited = false;
  child.once('exit', () => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  let startupMs: number | undefined;
  while (!exited && performance.now() - t0 < timeoutMs) {
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) {
      startupMs = performance.now() - t0;
      break;
    }
    await sleep(50);
  }
  if (exited) throw new Error(`the daemon exited before it answered:\n${out}`);
  return {
    child,
    url,
    startupMs,
    output: () => out,
    stop: async () => {
      if (exited) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const late = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await gone;
      clearTimeout(late);
    },
  };
}

interface IdleFigures {
  readonly tasks: number;
  readonly startupMs?: number;
  readonly rss?: number;
  /** The first idle window, from 5 s after /healthz answered. */
  readonly cpuPct?: number;
  /** A window from SETTLED_S after /healthz: past start-up's one-off garbage collections. */
  readonly settledCpuPct?: number;
  readonly connections?: number;
}

async function idle(n: number, idleS: number, timeoutMs: number): Promise<IdleFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'runlet-bench-cost-'));
  const redis = await startEmbeddedRedis(join(dir, 'redis'));
  const client = new Redis(redis.path);
  try {
    const file = join(dir, 'runlet.yaml');
    writeFileSync(
      file,
      configFor(n, () => '0 3 * * *'),
    );
    const before = await countClients(client);
    const d = await startCli(file, `unix://${redis.path}`, join(dir, 'data'), timeoutMs);
    try {
      if (d.startupMs === undefined) {
        console.error(`[daemon-cost] ${n} tasks: /healthz did not answer within ${timeoutMs / 1000} s`);
        return { tasks: n };
      }
      const answered = performance.now();
      await sleep(5000); // let start-up work (workers connecting, first scans) settle
      const pid = d.child.pid!;
      const cpuOver = async (seconds: number) => {
        const c0 = processThreadsCpuSeconds(pid);
        const t0 = performance.now();
        await sleep(seconds * 1000);
        return ((processThreadsCpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
      };
      const cpuPct = await cpuOver(idleS);
      // V8's memory reducer collects start-up's garbage (the parsed config, the first scans)
      // in a few full GCs some 30-40 s after start: a one-off, measured apart from what the
      // daemon costs for as long as it idles.
      await sleep(Math.max(0, SETTLED_S * 1000 - (performance.now() - answered)));
      const settledCpuPct = await cpuOver(idleS);
      const figures = {
        tasks: n,
        startupMs: d.startupMs,
        rss: processRssBytes(pid),
        cpuPct,
        settledCpuPct,
        connections: (await countClients(client)) - before,
      };
      console.error(`[daemon-cost] ${JSON.stringify(figures)}`);
      return figures;
    } finally {
      await d.stop();
    }
  } finally {
    client.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Lateness {
  readonly tasks: number;
  readonly startupMs?: number;
  readonly ticks: number;
  readonly p50?: number;
  readonly p99?: number;
  readonly max?: number;
}

/** n suspended tasks ticking once a minute at second i % 60; ticks of one full minute after start-up. */
async function lateness(n: number, timeoutMs: number): Promise<Lateness> {
  const dir = mkdtempSync(join(tmpdir(), 'runlet-bench-late-'));
  const redis = await startEmbeddedRedis(join(dir, 'redis'));
  const client = new Redis(redis.path);
  try {
    const file = join(dir, 'runlet.yaml');
    writeFileSync(
      file,
      configFor(n, (i) => `${i % 60} * * * * *`, ', suspended: true'),
    );
    const d = await startCli(file, `unix://${redis.path}`, join(dir, 'data'), timeoutMs);
    try {
      if (d.startupMs === undefined) return { tasks: n, ticks: 0 };
      // One minute of ticks, starting 5 s after it answered (start-up settled).
      await sleep(5000);
      const from = Date.now();
      await sleep(62_000);
      const to = from + 60_000;
      const ids = await client.zrangebyscore(keys.allRuns(), from - 5000, '+inf');
      const pipe = client.pipeline();
      for (const id of ids) pipe.hmget(keys.run(id), 'scheduledAt', 'createdAt');
      const rows = ((await pipe.exec()) ?? []).map(([, v]) => (v as (string | null)[]).map(Number));
      const late = rows.filter(([s]) => s! >= from && s! < to).map(([s, c]) => c! - s!);
      const st = stats(late);
      const r = { tasks: n, startupMs: d.startupMs, ticks: late.length, p50: st.p50, p99: st.p99, max: st.max };
      console.error(`[daemon-cost] lateness ${JSON.stringify(r)}`);
      return r;
    } finally {
      await d.stop();
    }
  } finally {
    client.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface DaemonCostResult {
  readonly lines: string[];
}

export async function daemonCost(
  taskCounts: readonly number[],
  latenessCounts: readonly number[],
  idleS: number,
  timeoutS: number,
): Promise<DaemonCostResult> {
  const packages = daemonPackages();
  const floor = await dependenciesFloor(packages);
  const idleRows: IdleFigures[] = [];
  for (const n of taskCounts) idleRows.push(await idle(n, idleS, timeoutS * 1000));
  const lateRows: Lateness[] = [];
  for (const n of latenessCounts) lateRows.push(await lateness(n, timeoutS * 1000));
  const na = `did not answer within ${timeoutS} s`;
  const lines = [
    `## daemon cost: idle daemon (built CLI, own Redis), tasks with a daily schedule each; ${idleS} s idle window`,
    '',
    `loaded-dependencies floor (bare node importing ${packages.join(', ')}): RSS ${mb(floor)}`,
    '',
    row([
      'tasks',
      'start-up (spawn → /healthz 200)',
      'RSS',
      'RSS − floor',
      'idle CPU, first window (% of a core)',
      `idle CPU, settled (from ${SETTLED_S} s)`,
      'Redis connections',
    ]),
    row(['---', '---', '---', '---', '---', '---', '---']),
    ...idleRows.map((r) =>
      r.startupMs === undefined
        ? row([r.tasks, na, '—', '—', '—', '—', '—'])
        : row([
            r.tasks,
            `${(r.startupMs / 1000).toFixed(1)} s`,
            mb(r.rss!),
            mb(r.rss! - floor),
            `${r.cpuPct!.toFixed(2)} %`,
            `${r.settledCpuPct!.toFixed(2)} %`,
            r.connections!,
          ]),
    ),
  ];
  if (lateRows.length)
    lines.push(
      '',
      'cron lateness: per-minute schedules (`S * * * * *`, S = i mod 60), tasks `suspended: true` (each tick is recorded as `skipped`, no container); lateness = record createdAt − scheduledAt over one minute',
      '',
      row(['schedules', 'start-up', 'ticks recorded in the minute', 'p50', 'p99', 'max']),
      row(['---', '---', '---', '---', '---', '---']),
      ...lateRows.map((r) =>
        r.startupMs === undefined
          ? row([r.tasks, na, '—', '—', '—', '—'])
          : row([r.tasks, `${(r.startupMs / 1000).toFixed(1)} s`, `${r.ticks} of ${r.tasks}`, ms(r.p50!), ms(r.p99!), ms(r.max!)]),
      ),
    );
  return { lines };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  daemonCost(listFlag('tasks', '10,1000,10000'), listFlag('lateness', '1000,10000'), numFlag('idle', 30), numFlag('timeout', 60)).then(
    (r) => {
      console.log(r.lines.join('\n'));
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
