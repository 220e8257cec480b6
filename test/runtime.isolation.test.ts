import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { RunFailedToStart } from '../src/runtime/errors.js';
import { BUSYBOX, busyboxSpec, docker, NODE, removeTestContainers, requireImages, runToEnd, uniqueRunId } from './helpers/docker.js';

const FILE = 'runtime.isolation';
const sh = (script: string) => ['sh', '-c', script];
const PAYLOAD = '{"from": "the caller"}';

describe('DockerRuntime: the isolation a task chooses (user, read-only rootfs, network)', () => {
  const runtime = new DockerRuntime({ docker });
  beforeAll(() => requireImages(BUSYBOX, NODE));
  afterAll(() => removeTestContainers(FILE));

  it('user "65534:65534" runs the program as that user, who can still read the payload and write output.json', async () => {
    // The payload has no newline of its own; one is added so it is not a final partial line
    // (the log follow sometimes ends before an unterminated last line arrives).
    const script = 'id -u; id -g; cat "$RUNLET_PAYLOAD_FILE"; echo; echo \'{"ok":true}\' > /runlet/output.json';
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(script), user: '65534:65534', payload: PAYLOAD }));
    expect(result.outcome).toBe('succeeded');
    expect(result.logTail.split('\n')).toEqual(expect.arrayContaining(['65534', '65534', PAYLOAD]));
    expect(result.output).toBe('{"ok":true}\n');
  });

  it('a user name is looked up in the image', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('id -u'), user: 'nobody' }));
    expect(result.logTail).toBe('65534\n');
  });

  it('a user the image does not have fails to start, naming it', async () => {
    const err = await runToEnd(runtime, busyboxSpec(FILE, { user: 'no-such-user' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunFailedToStart);
    expect((err as RunFailedToStart).reason).toContain('no-such-user');
  });

  it('readOnly: writing to / fails, /tmp and /runlet/output.json work, the payload is there', async () => {
    const script =
      'touch /x || echo "rootfs-refused"; echo in-tmp > /tmp/t && cat /tmp/t; cat "$RUNLET_PAYLOAD_FILE" > /runlet/output.json';
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(script), readOnly: true, payload: PAYLOAD }));
    expect(result.outcome).toBe('succeeded');
    expect(result.logTail).toContain('Read-only file system');
    expect(result.logTail).toContain('rootfs-refused\n');
    expect(result.logTail).toContain('in-tmp\n');
    expect(result.output).toBe(PAYLOAD);
  });

  it('readOnly as a non-root user, on an image without /runlet: /tmp and /runlet are still writable', async () => {
    const program =
      "const fs = require('fs'); fs.writeFileSync('/tmp/t', 'x'); fs.writeFileSync('/runlet/output.json', JSON.stringify({ uid: process.getuid(), payload: fs.readFileSync(process.env.RUNLET_PAYLOAD_FILE, 'utf8') }));";
    const { result } = await runToEnd(
      runtime,
      busyboxSpec(FILE, { image: NODE, command: ['node', '-e', program], readOnly: true, user: '65534:65534', payload: PAYLOAD }),
    );
    expect(result.outcome).toBe('succeeded');
    expect(JSON.parse(result.output ?? 'null')).toEqual({ uid: 65534, payload: PAYLOAD });
  });

  it('readOnly creates the container with a read-only rootfs, a 64 MiB /tmp, /runlet as its only (anonymous) volume, removed with it', async () => {
    const prepared = await runtime.prepare(busyboxSpec(FILE, { readOnly: true }));
    let volume: string | undefined;
    try {
      const info = await docker.getContainer(prepared.containerId).inspect();
      expect(info.HostConfig.ReadonlyRootfs).toBe(true);
      expect(info.HostConfig.Tmpfs).toEqual({ '/tmp': 'rw,nosuid,nodev,size=64m' });
      expect(info.HostConfig.Binds ?? []).toEqual([]);
      expect(info.Mounts).toHaveLength(1);
      expect(info.Mounts[0]).toMatchObject({ Type: 'volume', Destination: '/runlet', RW: true });
      volume = info.Mounts[0]!.Name;
      expect(volume).toMatch(/^[0-9a-f]{64}$/); // anonymous: the engine named it
      // The hardening every container gets is still there.
      expect(info.HostConfig).toMatchObject({ CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], Init: true, NetworkMode: 'bridge' });
    } finally {
      await runtime.remove(prepared.containerId);
    }
    await expect(docker.getVolume(volume!).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it("network 'none': only the loopback interface", async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('cat /proc/net/dev'), network: 'none' }));
    expect(result.logTail).toMatch(/^\s*lo:/m);
    expect(result.logTail).not.toMatch(/^\s*eth0:/m);
  });

  it('by default (and with a named network) the container has its eth0', async () => {
    const name = `runlet-test-net-${uniqueRunId().toLowerCase()}`;
    const network = await docker.createNetwork({ Name: name, Labels: { 'runlet.test': FILE } });
    try {
      for (const spec of [
        busyboxSpec(FILE, { command: sh('cat /proc/net/dev') }),
        busyboxSpec(FILE, { command: sh('cat /proc/net/dev'), network: name }),
      ]) {
        const { result } = await runToEnd(runtime, spec);
        expect(result.logTail).toMatch(/^\s*eth0:/m);
      }
    } finally {
      await network.remove();
    }
  });

  it("the host's network (or another container's) is refused before anything is created", async () => {
    for (const network of ['host', 'container:some-other']) {
      const spec = busyboxSpec(FILE, { network });
      const err = await runtime.prepare(spec).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunFailedToStart);
      expect((err as RunFailedToStart).reason).toMatch(new RegExp(`^network "${network}" is not allowed for a task`));
      expect(await runtime.list({ 'runlet.run': spec.runId })).toEqual([]);
    }
  });
});
