import Docker from 'dockerode';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load.js';
import type { RunletConfig } from '../../src/config/types.js';
import { startDaemon, type Daemon, type DaemonOptions } from '../../src/daemon.js';
import { createLogger } from '../../src/lib/logger.js';
import type { RunRecord } from '../../src/runs/types.js';
import { afterAll, beforeAll } from 'vitest';
import { startTestRedis } from './redis.js';

type TestRedis = Awaited<ReturnType<typeof startTestRedis>>;
import { isTerminal } from '../../src/runs/types.js';
import { removeClusterContainers } from './docker.js';
export { removeClusterContainers };

/** Log lines a daemon wrote, read back as objects. */
export class LogLines extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const line of chunk.toString().split('\n')) if (line.trim()) this.lines.push(JSON.parse(line));
    done();
  }
}

export function configFrom(yamlText: string, env: NodeJS.ProcessEnv = {}): RunletConfig {
  const dir = mkdtempSync(join(tmpdir(), 'runlet-test-config-'));
  const file = join(dir, 'runlet.yaml');
  writeFileSync(file, yamlText);
  return parseConfig(yamlText, file, env);
}

export interface TestDaemon extends Daemon {
  logs: LogLines;
  /** Waits (without sleeping blindly) until the run reaches a terminal status. */
  waitForEnd(runId: string, timeoutMs?: number): Promise<RunRecord>;
}

/** An in-process daemon on a test Redis, listening on a free port, with its logs captured. */
export async function startTestDaemon(
  opts: { config: RunletConfig; redisUrl: string | undefined; node?: string } & Partial<DaemonOptions>,
): Promise<TestDaemon> {
  const logs = new LogLines();
  const daemon = await startDaemon({
    dataDir: mkdtempSync(join(tmpdir(), 'runlet-test-data-')),
    node: opts.node ?? 'test-node',
    port: 0,
    logger: createLogger({ level: 'debug', destination: logs }),
    // The suite's id (test/global-setup.ts) keeps a concurrent suite's teardown off our containers.
    ...(process.env.RUNLET_TEST_SUITE && { labels: { 'runlet.x-suite': process.env.RUNLET_TEST_SUITE } }),
    ...opts,
  });
  // Events are local to the daemon that ran the run; another daemon on the same Redis may
  // have ended it, so the record is read again whenever an event or a short pause passes.
  const waitForEnd = async (runId: string, timeoutMs = 60_000): Promise<RunRecord> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rec = await daemon.store.get(runId, { withLogs: true, withPayload: true });
      if (rec && isTerminal(rec.status)) return rec;
      if (Date.now() > deadline) throw new Error(`run ${runId} did not end within ${timeoutMs} ms (status ${rec?.status})`);
      await daemon.events.once('run:finished', (e) => e.runId === runId, 250).catch(() => undefined);
    }
  };
  return { ...daemon, logs, waitForEnd };
}

export async function containersOfRun(runId: string): Promise<number> {
  const docker = new Docker();
  return (await docker.listContainers({ all: true, filters: { label: [`runlet.run=${runId}`] } })).length;
}

/**
 * A test file's daemon: its own Redis and one in-process daemon on `yamlText`, started
 * before the file's tests and stopped after them, its containers removed by cluster label.
 * Read `.daemon` and `.redis` inside tests (they are set by the time tests run).
 */
export function useDaemon(yamlText: string, opts: Partial<DaemonOptions> = {}): { daemon: TestDaemon; redis: TestRedis } {
  const ctx = {} as { daemon: TestDaemon; redis: TestRedis };
  beforeAll(async () => {
    ctx.redis = await startTestRedis();
    ctx.daemon = await startTestDaemon({ config: configFrom(yamlText), redisUrl: ctx.redis.url, ...opts });
  });
  afterAll(async () => {
    await ctx.daemon?.stop();
    if (ctx.daemon) await removeClusterContainers(ctx.daemon.identity.clusterId);
    await ctx.redis?.stopAndClean();
  });
  return ctx;
}
