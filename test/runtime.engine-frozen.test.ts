import Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { BUSYBOX, busyboxSpec, removeContainers } from './helpers/docker.js';

// A Docker engine that stops answering without going away (its dockerd frozen: SIGSTOP here;
// in life a hung daemon or a host under memory pressure) breaks no connection, so nothing
// tells a waiting run that its end will never be reported, and its kill never arrives. The
// wait must still end: once past the run's deadline and kill grace, it asks the engine with
// a time limit, and an engine that stays silent ends the attempt as `lost`.
// On an engine of its own (engine-host.sh), so freezing it touches nobody else's containers.
const FILE = 'runtime.engine-frozen';
const HOST_TOOL = '/work/shared/tools/engine-host.sh';
const ENGINE = 'w';

const exec = promisify(execFile);
const engineHost = async (...args: string[]) => (await exec('bash', [HOST_TOOL, ...args], { timeout: 90_000 })).stdout;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dockerdPid = () => Number(readFileSync(`/var/lib/runlet-hosts/${ENGINE}/docker.pid`, 'utf8').trim());

let engine: Docker;

beforeAll(async () => {
  const up = await engineHost('up', ENGINE, BUSYBOX);
  const socketPath = /DOCKER_HOST=unix:\/\/(\S+)/.exec(up)?.[1];
  if (!socketPath) throw new Error(`engine-host.sh up ${ENGINE} printed no socket:\n${up}`);
  engine = new Docker({ socketPath });
}, 120_000);

afterAll(async () => {
  // Thawed in any case, then everything of this file removed and the engine stopped.
  process.kill(dockerdPid(), 'SIGCONT');
  await removeContainers(engine, await engine.listContainers({ all: true, filters: { label: [`runlet.test=${FILE}`] } }));
  await engineHost('down', ENGINE);
}, 120_000);

describe('DockerRuntime: an engine that stops answering (frozen) mid-run', () => {
  it('ends the wait as lost once past the deadline and kill grace, saying since when the engine was silent', async () => {
    const runtime = new DockerRuntime({ docker: engine });
    const spec = busyboxSpec(FILE, { command: ['sh', '-c', 'echo started; exec sleep 300'], timeoutMs: 2_000, killGraceMs: 1_000 });
    const prepared = await runtime.prepare(spec);
    await runtime.start(prepared);
    const startedAt = Date.now();
    const waiting = runtime.wait(prepared);
    await sleep(1_000);
    process.kill(dockerdPid(), 'SIGSTOP');
    let result: Awaited<typeof waiting>;
    try {
      result = await waiting;
    } finally {
      process.kill(dockerdPid(), 'SIGCONT');
    }
    expect(result.outcome).toBe('lost');
    expect(result.reason).toMatch(/^the Docker engine did not answer since \d{4}-\d\d-\d\dT.*past the run's deadline and kill grace/);
    expect(result.logTail).toBe('started\n');
    // Not a bound on how fast, only that the wait did not outlast the silence by much.
    expect(Date.now() - startedAt).toBeLessThan(60_000);
    // The engine answers again: the container it kept is stopped and removed on request.
    expect(await runtime.kill(prepared.containerId, { reason: 'its attempt was lost', graceMs: 1_000 })).toBe('stopped');
    await runtime.remove(prepared.containerId);
    expect(await runtime.list({ 'runlet.run': spec.runId })).toEqual([]);
  }, 90_000);
});
