import Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { manualRequest } from '../src/triggers/manual.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { BUSYBOX } from './helpers/docker.js';
import { startTestRedis } from './helpers/redis.js';

// The Docker engine of a node restarts (or is away for a while) with `live-restore` on: the
// containers keep running while dockerd is gone, and every connection to it breaks, the
// wait on a run's container among them (its answer never comes: the daemon used to wait
// forever). The daemon must wait again on the same container when the engine is back, keep
// the run's deadline, resend a kill the engine could not take, and, when the engine stays
// away past the run's deadline and kill grace, end the attempt as `lost` rather than hang.
// On an engine of its own (engine-host.sh), so stopping it touches nobody else's containers.
const HOST_TOOL = '/work/shared/tools/engine-host.sh';
const ENGINE = 'u';
const CONFIG = `
defaults: { image: ${BUSYBOX}, memory: 16m, timeout: 60s }
tasks:
  restarted: { command: [sh, -c, 'echo a; sleep 6; echo b; exit 3'] }
  # The kill grace is longer than the bound the test allows past the deadline: only a resent
  # SIGTERM ends it in time, not the SIGKILL due after the grace.
  overdue: { command: [sh, -c, 'echo started; exec sleep 300'], timeout: 8s, killGrace: 60s }
  # Ends on its own (exit 3) past its deadline, while the engine is away: no signal reached it.
  selfend: { command: [sh, -c, 'echo a; sleep 9; exit 3'], timeout: 6s, killGrace: 60s }
  abandoned: { command: [sh, -c, 'echo started; exec sleep 300'], timeout: 3s, killGrace: 2s }
`;

const exec = promisify(execFile);
const engineHost = async (...args: string[]) =>
  (await exec('bash', [HOST_TOOL, ...args], { timeout: 90_000, env: { ...process.env, LIVE_RESTORE: '1' } })).stdout;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let engine: Docker;
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let daemon: TestDaemon;

beforeAll(async () => {
  let up = await engineHost('up', ENGINE, BUSYBOX);
  const socketPath = /DOCKER_HOST=unix:\/\/(\S+)/.exec(up)?.[1];
  if (!socketPath) throw new Error(`engine-host.sh up ${ENGINE} printed no socket:\n${up}`);
  engine = new Docker({ socketPath });
  // An engine left running without live-restore is started again with it (the flag is read at start).
  if (!((await engine.info()) as { LiveRestoreEnabled?: boolean }).LiveRestoreEnabled) up = await engineHost('restart', ENGINE);
  expect(((await engine.info()) as { LiveRestoreEnabled?: boolean }).LiveRestoreEnabled, up).toBe(true);
  redis = await startTestRedis();
  daemon = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: redis.url, node: `node-${ENGINE}`, docker: engine });
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await engineHost('up', ENGINE).catch(() => undefined);
  if (daemon) await removeClusterContainers(daemon.identity.clusterId, engine);
  await redis?.stopAndClean();
  await engineHost('down', ENGINE);
  // The name goes back to an engine without live-restore for whoever starts it next.
  rmSync(`/var/lib/runlet-hosts/${ENGINE}/live-restore`, { force: true });
}, 120_000);

async function started(task: string): Promise<{ runId: string; containerId: string; startedAt: number }> {
  const { runId } = await daemon.submit(manualRequest(task, undefined));
  const e = await daemon.events.once('run:started', (e) => e.runId === runId, 60_000);
  return { runId, containerId: e.containerId, startedAt: e.startedAt ?? Date.now() };
}

async function leftOnEngine(): Promise<string[]> {
  const left = await engine.listContainers({ all: true, filters: { label: [`runlet.cluster=${daemon.identity.clusterId}`] } });
  return left.map((c) => `${c.Names.join(',')} ${c.State}`);
}

describe('the engine restarts mid-run with live-restore', () => {
  it('the run keeps going and ends with its own exit code; its log has every line once; nothing is left', async () => {
    const { runId } = await started('restarted');
    // Mid-run: the program printed "a" and sleeps; it prints "b" while or after the engine restarts.
    await sleep(1_000);
    await engineHost('restart', ENGINE);
    const rec = await daemon.waitForEnd(runId, 60_000);
    expect(rec, JSON.stringify(rec.attempts)).toMatchObject({ status: 'failed', exitCode: 3, reason: 'exit code 3' });
    expect(rec.attempts).toHaveLength(1);
    expect(rec.logTail).toBe('a\nb\n');
    expect(await leftOnEngine()).toEqual([]);
  }, 90_000);

  it('a timeout that lands while the engine is away is enforced when it is back: timed_out, soon after, and the container is gone', async () => {
    const { runId, startedAt } = await started('overdue');
    const deadline = startedAt + 8_000;
    // Away from before the deadline (stopping dockerd takes a second or two) to past it.
    await sleep(2_000);
    await engineHost('down', ENGINE);
    await sleep(Math.max(0, deadline + 3_000 - Date.now()));
    await engineHost('up', ENGINE);
    const rec = await daemon.waitForEnd(runId, 60_000);
    const endedAt = Date.now();
    expect(rec, JSON.stringify(rec.attempts)).toMatchObject({ status: 'timed_out' });
    expect(rec.reason).toMatch(/^exceeded timeout of 8s/);
    expect(rec.logTail).toBe('started\n');
    // The SIGKILL after the 60 s grace would end it only well past this: the SIGTERM was sent again.
    expect(endedAt).toBeLessThan(deadline + 30_000);
    expect(await leftOnEngine()).toEqual([]);
  }, 90_000);

  it('a run that ends on its own while the engine is away, past its deadline, keeps its own exit: no signal of ours reached it', async () => {
    const { runId, startedAt } = await started('selfend');
    const deadline = startedAt + 6_000;
    await sleep(1_000);
    await engineHost('down', ENGINE);
    // Otherwise the SIGTERM was taken before the engine went, and this case is not the one meant.
    expect(Date.now(), 'the engine took longer than the deadline to stop').toBeLessThan(deadline);
    await sleep(Math.max(0, startedAt + 11_000 - Date.now()));
    await engineHost('up', ENGINE);
    const rec = await daemon.waitForEnd(runId, 60_000);
    expect(rec, JSON.stringify(rec.attempts)).toMatchObject({ status: 'failed', exitCode: 3, reason: 'exit code 3' });
    expect(await leftOnEngine()).toEqual([]);
  }, 90_000);

  it('an engine that stays away past the deadline and kill grace ends the attempt as lost, saying so; kill() stops the container once it is back', async () => {
    const { runId, containerId } = await started('abandoned');
    await sleep(1_000);
    await engineHost('down', ENGINE);
    try {
      const rec = await daemon.waitForEnd(runId, 60_000);
      expect(rec).toMatchObject({ status: 'lost' });
      expect(rec.reason).toMatch(/^the Docker engine did not answer since \d{4}-\d\d-\d\dT.*past the run's deadline and kill grace/);
      expect(rec.logTail).toBe('started\n');
    } finally {
      await engineHost('up', ENGINE);
    }
    // With live-restore the container outlived the attempt: what a reconciler finds and stops.
    const runtime = new DockerRuntime({ docker: engine });
    const [left] = await runtime.list({ 'runlet.run': runId });
    expect(left).toMatchObject({ containerId, running: true });
    expect(await runtime.kill(containerId, { reason: 'its attempt was lost', graceMs: 2_000 })).toBe('stopped');
    expect((await runtime.list({ 'runlet.run': runId }))[0]).toMatchObject({ running: false });
    expect(await runtime.kill(containerId, { reason: 'again', graceMs: 2_000 })).toBe('stopped');
    await runtime.remove(containerId);
    expect(await runtime.kill(containerId, { reason: 'gone', graceMs: 2_000 })).toBe('gone');
    expect(await leftOnEngine()).toEqual([]);
  }, 90_000);
});
