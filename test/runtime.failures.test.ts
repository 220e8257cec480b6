import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { RunFailedToStart } from '../src/runtime/errors.js';
import { BUSYBOX, busyboxSpec, docker, exists, removeTestContainers, requireImages, runToEnd } from './helpers/docker.js';

const FILE = 'runtime.failures';

describe('DockerRuntime: runs that cannot start or cannot be found', () => {
  const runtime = new DockerRuntime({ docker });
  beforeAll(() => requireImages(BUSYBOX));
  afterAll(() => removeTestContainers(FILE));

  it('an image that is not on the engine fails to prepare with an actionable reason, and nothing is pulled or left', async () => {
    const spec = busyboxSpec(FILE, { image: 'runlet/not-built:local' });
    const err = await runtime.prepare(spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunFailedToStart);
    expect((err as RunFailedToStart).reason).toBe(
      'image "runlet/not-built:local" not found locally (runlet never pulls: build or load it first)',
    );
    expect(await runtime.list({ 'runlet.run': spec.runId })).toEqual([]);
    await expect(docker.getImage('runlet/not-built:local').inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('a command that does not exist fails with "command not found"', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: ['nope', '--flag'] }));
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 127, reason: 'command not found: "nope" (exit 127)' });
  });

  it('a command that is not executable fails with "command not executable"', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: ['/etc/passwd'] }));
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 126, reason: 'command not executable: "/etc/passwd" (exit 126)' });
  });

  it('a shell reporting a missing command still says so', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: ['sh', '-c', 'no-such-tool'] }));
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 127, reason: 'exit code 127 (command not found)' });
  });

  it('a start the engine refuses throws RunFailedToStart and removes the container', async () => {
    // Two containers cannot share one container's network namespace when that one is not
    // running: the engine refuses the start (a real start failure that needs no broken image).
    const spec = busyboxSpec(FILE, { command: ['true'] });
    const prepared = await runtime.prepare(spec);
    const other = await docker.createContainer({
      Image: BUSYBOX,
      Cmd: ['true'],
      Labels: { 'runlet.managed': 'true', 'runlet.test': FILE },
      HostConfig: { NetworkMode: `container:${prepared.containerId}` },
    });
    try {
      await runtime.remove(prepared.containerId); // now `other` points at a namespace that is gone
      const orphan = runtime.adopt({ containerId: other.id, runId: spec.runId, task: spec.task, labels: {}, running: false }, spec);
      const err = await runtime.start(orphan).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunFailedToStart);
      expect((err as RunFailedToStart).reason).toMatch(/^the engine could not start the container: .+/);
      expect((err as RunFailedToStart).reason.length).toBeLessThan(400);
      expect(await exists(other.id)).toBe(false);
    } finally {
      await other.remove({ force: true }).catch(() => undefined);
    }
  });

  it('starting a container that was removed in the meantime throws RunFailedToStart', async () => {
    const prepared = await runtime.prepare(busyboxSpec(FILE));
    await runtime.remove(prepared.containerId);
    const err = await runtime.start(prepared).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunFailedToStart);
    expect((err as RunFailedToStart).reason).toContain('removed before it started');
  });

  it('waiting on a container that is already gone ends as failed and says so', async () => {
    const prepared = await runtime.prepare(busyboxSpec(FILE));
    await runtime.remove(prepared.containerId);
    const result = await runtime.wait(prepared);
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(/no longer exists/);
  });

  it('waiting on a container that was never started fails instead of reading as success', async () => {
    const prepared = await runtime.prepare(busyboxSpec(FILE));
    try {
      const result = await runtime.wait(prepared);
      expect(result).toMatchObject({ outcome: 'failed', reason: 'the container was never started' });
    } finally {
      await runtime.remove(prepared.containerId);
    }
  });

  it("the next attempt of a run gets a container of its own while the last attempt's is still there", async () => {
    // An attempt that ended while its engine restarted could not remove its container; the
    // retry must not clash with its name.
    const first = busyboxSpec(FILE);
    const left = await runtime.prepare(first);
    try {
      const retry = await runtime.prepare({ ...first, attempt: 2 });
      await runtime.remove(retry.containerId);
      expect(retry.containerId).not.toBe(left.containerId);
    } finally {
      await runtime.remove(left.containerId);
    }
  });

  it('preparing the same run twice is refused with a reason', async () => {
    const spec = busyboxSpec(FILE);
    const prepared = await runtime.prepare(spec);
    try {
      const err = await runtime.prepare(spec).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunFailedToStart);
      expect((err as RunFailedToStart).reason).toContain('already exists');
    } finally {
      await runtime.remove(prepared.containerId);
    }
  });
});
