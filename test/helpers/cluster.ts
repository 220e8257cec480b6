import Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { LABEL_CLUSTER, LABEL_RUN, parseRunLabels } from '../../src/runtime/labels.js';
import { keys } from '../../src/runs/keys.js';
import { RunStore } from '../../src/runs/store.js';
import { removeClusterContainers } from './docker.js';
import { freePort, spawnDaemon, type DaemonProcess } from './spawn.js';
import { startEmbeddedRedis } from '../../src/lib/embedded-redis.js';
import { startTestRedis } from './redis.js';

/**
 * Several hosts on this machine, as the fault tests of issue 13 need them: each node is a
 * daemon process (the built CLI) on a Docker engine of its own (engine-host.sh: its own
 * dockerd, data root, containerd and bridge), all on one Redis. A shared engine would hide
 * what happens between hosts (a container name clash stands in for the second container).
 */

export const ENGINE_HOST_TOOL = '/work/shared/tools/engine-host.sh';
const exec = promisify(execFile);

export interface Engine {
  readonly name: string;
  readonly docker: Docker;
  /** `unix:///…/docker.sock`, for a daemon process's DOCKER_HOST. */
  readonly dockerHost: string;
}

export async function engineHost(...args: string[]): Promise<string> {
  return (await exec('bash', [ENGINE_HOST_TOOL, ...args], { timeout: 120_000 })).stdout;
}

/** Engine `name` started (if need be) with `images` copied in. Names must be the test file's own (they map to bridge subnets). */
export async function upEngine(name: string, images: readonly string[], env: Record<string, string> = {}): Promise<Engine> {
  const { stdout } = await exec('bash', [ENGINE_HOST_TOOL, 'up', name, ...images], { timeout: 120_000, env: { ...process.env, ...env } });
  const dockerHost = /DOCKER_HOST=(unix:\/\/\S+)/.exec(stdout)?.[1];
  if (!dockerHost) throw new Error(`engine-host.sh up ${name} printed no socket:\n${stdout}`);
  return { name, dockerHost, docker: new Docker({ socketPath: dockerHost.slice('unix://'.length) }) };
}

/** One node: a daemon process on its engine; `start` again after `kill`/`stop` is a restart on the same node. */
export class ClusterNode {
  process?: DaemonProcess;
  /** Everything each process of this node printed, oldest first (restarts included). */
  private readonly outputs: Array<() => string> = [];
  readonly port: Promise<number> = freePort();

  constructor(
    readonly node: string,
    readonly engine: Engine,
    private readonly configFile: string,
    private readonly env: () => Record<string, string>,
  ) {}

  async url(): Promise<string> {
    return `http://127.0.0.1:${await this.port}`;
  }

  /** Starts the daemon and resolves once it logged that it is running. */
  async start(extraEnv: Record<string, string> = {}): Promise<void> {
    await (
      await this.launch(extraEnv)
    ).ready;
  }

  /**
   * Starts the daemon without waiting for it to be ready (a crash loop kills it mid-start):
   * the returned process's `ready` says when it is, and rejects if it exits first.
   */
  async launch(extraEnv: Record<string, string> = {}): Promise<DaemonProcess> {
    const p = spawnDaemon(this.configFile, {
      ...this.env(),
      DOCKER_HOST: this.engine.dockerHost,
      RUNLET_NODE: this.node,
      RUNLET_PORT: String(await this.port),
      ...extraEnv,
    });
    this.process = p;
    this.outputs.push(p.output);
    return p;
  }

  get pid(): number | undefined {
    return this.process?.child.pid;
  }

  get running(): boolean {
    return this.process !== undefined && this.process.child.exitCode === null && this.process.child.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    this.process?.child.kill(sig);
  }

  /** Sends `sig` (SIGTERM: a graceful stop; SIGKILL: a crash) and waits for the process to exit. */
  async stop(sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(sig);
    await exited;
  }

  output(): string {
    return this.outputs.map((o) => o()).join('\n--- restarted ---\n');
  }

  /** The JSON log lines of every process of this node, oldest first (a line cut by a kill is skipped). */
  logLines(): Array<Record<string, unknown>> {
    const lines: Array<Record<string, unknown>> = [];
    for (const o of this.outputs)
      for (const line of o().split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // the process was killed mid-line
        }
      }
    return lines;
  }
}

/**
 * Samples every engine's running containers of one cluster every `everyMs`: which runs had
 * a container running where, and when. The promise "at most one container of a run is
 * running at any instant, across all hosts" is checked against these samples, so the check
 * sees containers as the engines report them, not as runlet records them.
 */
export class ContainerSampler {
  private timer?: NodeJS.Timeout;
  private sampling?: Promise<void>;
  /** Per sample: run id → containers of it running then (engine, attempt, id). */
  readonly samples: Array<{ at: number; runs: Map<string, Array<{ engine: string; attempt: number; id: string }>> }> = [];
  /** Engines that did not answer a sample (down, restarting): named per sample. */
  readonly unreachable: Array<{ at: number; engine: string }> = [];

  constructor(
    private readonly engines: readonly Engine[],
    private readonly clusterId: () => string | undefined,
  ) {}

  start(everyMs = 500): this {
    const tick = () => {
      this.sampling = this.sampleOnce().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, everyMs);
      });
    };
    this.timer = setTimeout(tick, 0);
    return this;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.sampling;
  }

  async sampleOnce(): Promise<void> {
    const cluster = this.clusterId();
    if (!cluster) return;
    const at = Date.now();
    const runs = new Map<string, Array<{ engine: string; attempt: number; id: string }>>();
    await Promise.all(
      this.engines.map(async (e) => {
        try {
          const list = await e.docker.listContainers({ filters: { label: [`${LABEL_CLUSTER}=${cluster}`], status: ['running'] } });
          for (const c of list) {
            const runId = c.Labels[LABEL_RUN];
            if (!runId) continue;
            const entry = { engine: e.name, attempt: parseRunLabels(c.Labels).attempt, id: c.Id.slice(0, 12) };
            runs.set(runId, [...(runs.get(runId) ?? []), entry]);
          }
        } catch {
          this.unreachable.push({ at, engine: e.name });
        }
      }),
    );
    this.samples.push({ at, runs });
  }

  /** Samples in which one run had more than one running container (the promise broken), described. */
  overlaps(): string[] {
    const found: string[] = [];
    for (const s of this.samples)
      for (const [runId, cs] of s.runs)
        if (cs.length > 1)
          found.push(`${new Date(s.at).toISOString()} run ${runId}: ${cs.map((c) => `${c.engine}/a${c.attempt}/${c.id}`).join(', ')}`);
    return found;
  }

  /** Run ids seen running in any sample, with the engines they were seen on. */
  seen(): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const s of this.samples)
      for (const [runId, cs] of s.runs)
        for (const c of cs) out.set(runId, new Set([...(out.get(runId) ?? []), `${c.engine}/a${c.attempt}`]));
    return out;
  }
}

export interface Cluster {
  readonly redis: Awaited<ReturnType<typeof startTestRedis>>;
  readonly redisClient: Redis;
  /** The cluster's run records, read from its Redis. */
  readonly store: RunStore;
  readonly engines: Engine[];
  readonly nodes: ClusterNode[];
  readonly sampler: ContainerSampler;
  clusterId(): string | undefined;
  /**
   * Stops the Redis server gracefully (it writes its append-only file), leaves it down for
   * `downMs`, and starts it again on the same socket and data dir: it comes back from its AOF.
   */
  restartRedis(downMs: number): Promise<void>;
  /** Stops every daemon (SIGKILL if SIGTERM does not end it), removes the cluster's containers on every engine, stops Redis; `down` the engines. */
  teardown(opts?: { downEngines?: boolean }): Promise<void>;
}

/**
 * A cluster of `engineNames.length` nodes (node `node-<engine>`), all on one test Redis, with
 * `yamlText` as every node's config. Daemons are not started: call `node.start()`. The sampler
 * starts once the cluster id is known (after the first daemon started) — call `sampler.start()`.
 */
export async function startCluster(opts: {
  yamlText: string;
  engineNames: readonly string[];
  images: readonly string[];
  env?: Record<string, string>;
  engineEnv?: Record<string, string>;
}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'runlet-cluster-'));
  const configFile = join(dir, 'runlet.yaml');
  writeFileSync(configFile, opts.yamlText);
  const engines: Engine[] = [];
  for (const name of opts.engineNames) engines.push(await upEngine(name, opts.images, opts.engineEnv));
  const redis = await startTestRedis();
  /** The running server's stop: the first one's, then a restarted one's. */
  let stopRedis = redis.stop;
  const redisClient = new Redis(redis.url);
  redisClient.on('error', () => undefined); // reconnects by itself (restartRedis)
  let clusterId: string | undefined;
  const env = () => ({ REDIS_URL: redis.url, RUNLET_DATA: join(dir, 'data'), ...opts.env });
  const nodes = engines.map((e) => new ClusterNode(`node-${e.name}`, e, configFile, env));
  const sampler = new ContainerSampler(engines, () => clusterId);
  const refreshId = async () => (clusterId ??= (await redisClient.get(keys.clusterId())) ?? undefined);
  const timer = setInterval(() => void refreshId().catch(() => undefined), 200);
  return {
    redis,
    redisClient,
    store: new RunStore(redisClient),
    engines,
    nodes,
    sampler,
    clusterId: () => clusterId,
    restartRedis: async (downMs) => {
      await stopRedis();
      await new Promise((r) => setTimeout(r, downMs));
      stopRedis = (await startEmbeddedRedis(redis.dir)).stop;
    },
    teardown: async ({ downEngines = true } = {}) => {
      clearInterval(timer);
      await sampler.stop();
      await Promise.all(
        nodes.map(async (n) => {
          n.signal('SIGCONT'); // a frozen daemon acts on nothing until it runs again
          const graceful = n.stop('SIGTERM');
          const late = setTimeout(() => n.signal('SIGKILL'), 20_000);
          await graceful;
          clearTimeout(late);
        }),
      );
      await refreshId().catch(() => undefined);
      for (const e of engines) {
        // An engine left down (a fault in progress) keeps its containers on disk: up it to remove them.
        if (
          clusterId &&
          !(await e.docker.ping().then(
            () => true,
            () => false,
          ))
        )
          await engineHost('up', e.name).catch(() => undefined);
        if (clusterId) await removeClusterContainers(clusterId, e.docker).catch(() => undefined);
        if (downEngines) await engineHost('down', e.name).catch(() => undefined);
      }
      redisClient.disconnect();
      await stopRedis();
      await redis.stopAndClean();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
