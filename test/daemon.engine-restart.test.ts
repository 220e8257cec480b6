import Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { manualRequest } from '../src/triggers/manual.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { BUSYBOX } from './helpers/docker.js';
import { startTestRedis } from './helpers/redis.js';

// The Docker engine of a node restarts while a run's container runs (a dockerd upgrade, a
// crash). The engine stops the container, so the attempt fails; its retry comes while the
// engine is still away and must wait for it rather than fail on a missing socket. The retry's
// container has a name of its own (`runlet-<task>-<run>-a<n>`): an earlier attempt's container
// the engine could not remove as it went away would otherwise refuse it (409, "prepared
// twice"; runtime.failures.test.ts provokes that clash directly, as here the dying engine
// mostly still removes the first container). Nothing of the run may be left on the engine.
// On an engine of its own (engine-host.sh), so restarting it touches nobody else's containers.
const HOST_TOOL = '/work/shared/tools/engine-host.sh';
// Not 1 s: dockerd takes about a second to die after the SIGTERM, and meanwhile still serves
// requests on connections kept alive, so a retry that soon is created on the dying engine and
// fails as it hangs up. 3 s (less up to 20 % jitter) lands after it died.
const RETRY = '3s';
const CONFIG = `
defaults: { image: ${BUSYBOX}, memory: 16m, timeout: 60s }
tasks:
  sleeper: { command: [sh, -c, 'echo "attempt $RUNLET_ATTEMPT"; sleep 5; echo "attempt $RUNLET_ATTEMPT done"'], retries: { attempts: 2, delay: ${RETRY} } }
`;

const exec = promisify(execFile);
const engineHost = async (...args: string[]) => (await exec('bash', [HOST_TOOL, ...args], { timeout: 90_000 })).stdout;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type TestRedis = Awaited<ReturnType<typeof startTestRedis>>;
/** Engines this file started, each with its daemon and that daemon's Redis (its own cluster): all removed in afterAll. */
const used: Array<{ name: string; engine: Docker; redis?: TestRedis; daemon?: TestDaemon }> = [];

afterAll(async () => {
  for (const { name, engine, redis, daemon } of used) {
    await daemon?.stop();
    if (daemon) await removeClusterContainers(daemon.identity.clusterId, engine);
    await redis?.stopAndClean();
    await engineHost('down', name);
  }
}, 120_000);

/** Engine `name` (started if need be, with the busybox image) and a daemon on it, with a run of `sleeper` started. */
async function runningOn(name: string): Promise<{ engine: Docker; daemon: TestDaemon; runId: string }> {
  const up = await engineHost('up', name, BUSYBOX);
  const socketPath = /DOCKER_HOST=unix:\/\/(\S+)/.exec(up)?.[1];
  if (!socketPath) throw new Error(`engine-host.sh up ${name} printed no socket:\n${up}`);
  const engine = new Docker({ socketPath });
  const entry: (typeof used)[number] = { name, engine };
  used.push(entry);
  // A Redis per case: one cluster's daemons share queues, and the other case's daemon would take this run.
  const redis = await startTestRedis();
  entry.redis = redis;
  const daemon = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: redis.url, node: `node-${name}`, docker: engine });
  entry.daemon = daemon;
  const { runId } = await daemon.submit(manualRequest('sleeper', undefined));
  await daemon.events.once('run:started', (e) => e.runId === runId);
  // Mid-run: the program is in its sleep.
  await sleep(1_000);
  return { engine, daemon, runId };
}

async function expectRetriedAndClean(engine: Docker, daemon: TestDaemon, runId: string): Promise<string> {
  const rec = await daemon.waitForEnd(runId, 60_000);
  expect(
    rec.attempts.map((a) => [a.attempt, a.status]),
    JSON.stringify(rec.attempts.map((a) => a.reason)),
  ).toEqual([
    [1, 'failed'],
    [2, 'succeeded'],
  ]);
  expect(rec).toMatchObject({ status: 'succeeded', attempt: 2 });
  expect(rec.logTail).toContain('attempt 2 done');
  const left = await engine.listContainers({ all: true, filters: { label: [`runlet.cluster=${daemon.identity.clusterId}`] } });
  expect(left.map((c) => `${c.Names.join(',')} ${c.State}`)).toEqual([]);
  return rec.attempts[0].reason ?? '';
}

describe('the engine restarts mid-run', () => {
  it('the engine stops the container; the retry waits for the engine to be back, gets a container of its own and succeeds; nothing is left', async () => {
    const { engine, daemon, runId } = await runningOn('n13e');
    // down, then up: engine-host.sh restart with the engine away for a few seconds, so the
    // retry comes while it is away (see RETRY below).
    await engineHost('down', 'n13e');
    await sleep(5_000);
    await engineHost('up', 'n13e');
    const reason = await expectRetriedAndClean(engine, daemon, runId);
    // The engine stopped the container as it shut down: the program saw a SIGTERM that
    // runlet did not send.
    expect(reason).toBe('exit code 143 (killed by signal 15, SIGTERM)');
  });
});
