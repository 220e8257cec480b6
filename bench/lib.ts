/**
 * What the benchmarks share: the floor's container (the raw Docker API with runlet's
 * hardening), statistics, CPU readings from /proc, the in-process daemon, and the clean-up
 * of every container a benchmark made (by its label). Each benchmark module imports this and
 * nothing of src/dispatch: they use runlet only through its public entry points.
 */
import { DEFAULTS } from '../src/config/defaults.js';
import { READ_ONLY_TMPFS } from '../src/runtime/isolation.js';
import Docker from 'dockerode';
import { readFileSync, readdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import { startDaemon, type Daemon } from '../src/daemon.js';
import { startEmbeddedRedis } from '../src/lib/embedded-redis.js';
import { createLogger } from '../src/lib/logger.js';

export const IMAGE = 'runlet/busybox:local';
/** Every container a benchmark makes carries this label (and runlet.managed), so a leftover is found and removed. */
export const BENCH_LABEL = 'runlet.bench';
/**
 * A test suite's teardown on the same engine removes every runlet.managed container made
 * during it that does not carry another suite's id under this label (test/global-setup.ts):
 * without it a test run beside a benchmark would remove the benchmark's containers mid-run
 * and fail for "leaking" them.
 */
export const SUITE_LABEL = 'runlet.x-suite';
export const SUITE_ID = `bench-${process.pid}`;

/**
 * The task's first act: `adjtimex` (busybox) reads the kernel's CLOCK_REALTIME with
 * nanoseconds (STA_NANO) without any capability (modes = 0 only reads). Containers share the
 * host's kernel clock (Docker 20.10 makes no time namespace), so the value compares directly
 * with the host's `performance.timeOrigin + performance.now()`. /proc/uptime would do too but
 * ticks in 10 ms steps; this one does not.
 */
export const CLOCK_COMMAND = ['adjtimex'];

/** Epoch ms (fractional) printed by CLOCK_COMMAND, or undefined if the log holds none. */
export function clockFromLog(log: string): number | undefined {
  const sec = /time\.tv_sec:\s*(\d+)/.exec(log)?.[1];
  const sub = /time\.tv_usec:\s*(\d+)/.exec(log)?.[1];
  const status = Number(/status:\s*(\d+)/.exec(log)?.[1] ?? 0);
  if (!sec || !sub) return undefined;
  // STA_NANO (0x2000): the "usec" field holds nanoseconds.
  const frac = (status & 0x2000) !== 0 ? Number(sub) / 1e6 : Number(sub) / 1e3;
  return Number(sec) * 1000 + frac;
}

/** The host's CLOCK_REALTIME as epoch ms with sub-millisecond precision. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export interface Stats {
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly min: number;
}

export function stats(xs: readonly number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
  return { n: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

export const ms = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(x < 10 ? 1 : 0)} ms` : '—');
export const ratio = (a: number, b: number): string => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : '—');

/** `--name value` from argv, else the default. */
export function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
export const numFlag = (name: string, fallback: number): number => Number(flag(name, String(fallback)));
export const listFlag = (name: string, fallback: string): number[] =>
  flag(name, fallback)
    .split(',')
    .map((x) => Number(x.trim()))
    .filter((x) => Number.isFinite(x) && x > 0);

/** Resolves with `p`, or rejects with "did not answer within N s". */
export async function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (msec: number): Promise<void> => new Promise((r) => setTimeout(r, msec));

/** utime + stime of a process, in seconds (from /proc/<pid>/stat; clock ticks of 10 ms). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: the fields after it start past its ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

/**
 * CPU seconds the live threads of a process have run (the first field of each
 * /proc/<pid>/task/<tid>/schedstat, in ns): exact where /proc/<pid>/stat counts 10 ms ticks,
 * which an idle daemon's few hundred ms a minute need. Threads that exit are not counted.
 */
export function processThreadsCpuSeconds(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e9;
}

/** Resident set size of a process in bytes (VmRSS of /proc/<pid>/status). */
export function processRssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? NaN) * 1024;
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  return (user! + nice! + system! + irq! + softirq! + steal!) / 100;
}

/** The default engine's dockerd, or undefined when its pid file is not readable. */
export function dockerdPid(): number | undefined {
  try {
    return Number(readFileSync('/var/run/docker.pid', 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

/** CPU spent by dockerd, this process and the whole machine during `work`. */
export async function cpuDuring<T>(
  work: () => Promise<T>,
): Promise<{ result: T; dockerd: number; self: number; machine: number; wallS: number }> {
  const pid = dockerdPid();
  const d0 = pid ? processCpuSeconds(pid) : NaN;
  const s0 = process.cpuUsage();
  const m0 = machineBusySeconds();
  const t0 = performance.now();
  const result = await work();
  const s1 = process.cpuUsage(s0);
  return {
    result,
    dockerd: pid ? processCpuSeconds(pid) - d0 : NaN,
    self: (s1.user + s1.system) / 1e6,
    machine: machineBusySeconds() - m0,
    wallS: (performance.now() - t0) / 1000,
  };
}

/**
 * The floor's container: what runlet's DockerRuntime asks the engine for, without runlet
 * (src/runtime/docker.ts hostConfig: limits, no swap, all capabilities dropped,
 * no-new-privileges, tini as init, the json-file log with its rotation, the default bridge,
 * host.docker.internal), with the isolation defaults a task gets (not root, a read-only root
 * filesystem with its /tmp tmpfs). Only runlet's own contract (/runlet) is left out.
 */
export function floorCreateOptions(bench: string, cmd: readonly string[] = CLOCK_COMMAND): Docker.ContainerCreateOptions {
  return {
    Image: IMAGE,
    Cmd: [...cmd],
    Labels: { 'runlet.managed': 'true', [BENCH_LABEL]: bench, [SUITE_LABEL]: SUITE_ID },
    Tty: false,
    User: DEFAULTS.user,
    HostConfig: {
      ReadonlyRootfs: true,
      Tmpfs: { ...READ_ONLY_TMPFS },
      Memory: 16 * 2 ** 20,
      MemorySwap: 16 * 2 ** 20,
      ...(cgroupV1 ? { MemorySwappiness: 0 } : {}),
      NanoCpus: 5e8,
      PidsLimit: 256,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '8m', 'max-file': '2' } },
      NetworkMode: 'bridge',
      ExtraHosts: ['host.docker.internal:host-gateway'],
    },
  };
}
let cgroupV1 = true;
export async function detectCgroup(docker: Docker): Promise<void> {
  cgroupV1 = ((await docker.info()) as { CgroupVersion?: string }).CgroupVersion === '1';
}

/** The task definition matching floorCreateOptions, for a runlet config. */
export const TASK_LIMITS = `image: ${IMAGE}, command: ["adjtimex"], memory: 16m, cpus: 0.5`;

export interface FloorRun {
  /** create request → the program's first clock reading. */
  readonly toRunning: number;
  /** create request → removed (the log is read between wait and remove, outside the clock). */
  readonly total: number;
}

/** One floor run: create → start → wait → remove, with the program's clock read from its log. */
export async function floorRun(docker: Docker, bench: string): Promise<FloorRun> {
  const t0 = nowMs();
  const c = await docker.createContainer(floorCreateOptions(bench));
  await c.start();
  await c.wait();
  const waited = nowMs();
  const log = (await c.logs({ stdout: true, stderr: true })).toString('latin1');
  const r0 = nowMs();
  await c.remove({ force: true, v: true });
  const removed = nowMs();
  const running = clockFromLog(log);
  return { toRunning: running === undefined ? NaN : running - t0, total: waited - t0 + (removed - r0) };
}

/** Removes every container of this benchmark (or all benchmarks) on `docker`. */
export async function removeBenchContainers(docker: Docker, bench?: string): Promise<number> {
  const filter = bench ? `${BENCH_LABEL}=${bench}` : BENCH_LABEL;
  const left = await docker.listContainers({ all: true, filters: { label: [filter] } });
  await Promise.all(
    left.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
  return left.length;
}

export interface BenchDaemon {
  readonly daemon: Daemon;
  readonly dir: string;
  stop(): Promise<void>;
}

/**
 * An in-process daemon (embedded Redis on a unix socket) for `yaml`, its containers labelled
 * `runlet.bench=<bench>` (RUNLET_LABELS' in-process equivalent) so they are removed by label.
 */
export async function benchDaemon(yaml: string, bench: string, docker: Docker): Promise<BenchDaemon> {
  const dir = mkdtempSync(join(tmpdir(), `runlet-bench-${bench}-`));
  const file = join(dir, 'runlet.yaml');
  writeFileSync(file, yaml);
  const redis = await startEmbeddedRedis(join(dir, 'data'));
  const daemon = await startDaemon({
    config: parseConfig(yaml, file, {}),
    logger: createLogger({ level: 'warn' }),
    dataDir: join(dir, 'data'),
    node: 'bench',
    redisUrl: `unix://${redis.path}`,
    port: 0,
    docker,
    labels: { [BENCH_LABEL]: bench, [SUITE_LABEL]: SUITE_ID },
  });
  return {
    daemon,
    dir,
    stop: async () => {
      await daemon.stop();
      await removeBenchContainers(docker, bench);
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A markdown-ish table row. */
export const row = (cells: readonly (string | number)[]): string => `| ${cells.join(' | ')} |`;
