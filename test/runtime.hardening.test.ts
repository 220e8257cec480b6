import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../src/config/defaults.js';
import { DockerRuntime } from '../src/runtime/docker.js';
import { BUSYBOX, busyboxSpec, docker, removeTestContainers, requireImages, runToEnd } from './helpers/docker.js';

const FILE = 'runtime.hardening';
const MiB = 1024 * 1024;

describe('DockerRuntime: isolation and limits applied to every container', () => {
  const runtime = new DockerRuntime({ docker });
  beforeAll(() => requireImages(BUSYBOX));
  afterAll(() => removeTestContainers(FILE));

  it('creates the container with the limits, hardening, labels and name of the spec', async () => {
    const spec = busyboxSpec(FILE, {
      task: 'Weekly_Report',
      runId: '01HXAMPLERUNID',
      memoryBytes: 48 * MiB,
      cpus: 0.25,
      pids: 32,
      labels: { 'runlet.node': 'n1' },
    });
    const prepared = await runtime.prepare(spec);
    try {
      const info = await docker.getContainer(prepared.containerId).inspect();
      const host = info.HostConfig;
      expect(info.Name).toBe('/runlet-weekly_report-01hxamplerunid-a1');
      expect(info.Config.Labels).toMatchObject({
        'runlet.managed': 'true',
        'runlet.run': '01HXAMPLERUNID',
        'runlet.task': 'Weekly_Report',
        'runlet.node': 'n1',
        'runlet.test': FILE,
      });
      expect(host.Memory).toBe(48 * MiB);
      expect(host.MemorySwap).toBe(host.Memory);
      expect(host.NanoCpus).toBe(250_000_000);
      expect(host.PidsLimit).toBe(32);
      expect(host.CapDrop).toEqual(['ALL']);
      expect(host.CapAdd ?? []).toEqual([]);
      expect(host.SecurityOpt).toEqual(['no-new-privileges']);
      expect(host.Init).toBe(true);
      expect(host.Privileged).toBe(false);
      expect(host.AutoRemove).toBe(false);
      expect(host.LogConfig).toEqual({ Type: 'json-file', Config: { 'max-size': '8m', 'max-file': '2' } });
      // Nothing of the host's is mounted. A root run without a payload (this one: busybox's
      // USER is root, no user or payload in the spec) gets /runlet as an anonymous volume
      // without copy-up (run-dir.ts: runDirVolumeOnly), and that is the only mount.
      expect(host.Binds ?? []).toEqual([]);
      expect(host.Mounts).toEqual([{ Type: 'volume', Target: '/runlet', VolumeOptions: { NoCopy: true } }]);
      expect(info.Mounts.map((m) => ({ Type: m.Type, Destination: m.Destination, RW: m.RW, Driver: m.Driver }))).toEqual([
        { Type: 'volume', Destination: '/runlet', RW: true, Driver: 'local' },
      ]);
      expect(host.NetworkMode).toBe('bridge');
      const engine = (await docker.info()) as { CgroupVersion?: string };
      if (engine.CgroupVersion === '1') expect(host.MemorySwappiness).toBe(0);
    } finally {
      await runtime.remove(prepared.containerId);
    }
  });

  it("with the config's isolation defaults: user 65534:65534, a read-only root, /tmp a 64m tmpfs, /runlet the only mount", async () => {
    const prepared = await runtime.prepare(busyboxSpec(FILE, { user: DEFAULTS.user, readOnly: DEFAULTS.readOnly }));
    try {
      const info = await docker.getContainer(prepared.containerId).inspect();
      expect(info.Config.User).toBe('65534:65534');
      expect(info.HostConfig.ReadonlyRootfs).toBe(true);
      expect(info.HostConfig.Tmpfs).toEqual({ '/tmp': 'rw,nosuid,nodev,size=64m' });
      expect(info.HostConfig.Binds ?? []).toEqual([]);
      expect(info.Mounts.map((m) => [m.Type, m.Destination])).toEqual([['volume', '/runlet']]);
      expect(info.HostConfig.CapDrop).toEqual(['ALL']);
      expect(info.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    } finally {
      await runtime.remove(prepared.containerId);
    }
  });

  it('the program runs with no capabilities, no-new-privileges, and tini as PID 1', async () => {
    const script = 'grep -E "^(CapEff|NoNewPrivs):" /proc/self/status; echo "pid1=$(cat /proc/1/comm)"';
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: ['sh', '-c', script] }));
    expect(result.outcome).toBe('succeeded');
    expect(result.logTail).toMatch(/CapEff:\s+0000000000000000/);
    expect(result.logTail).toMatch(/NoNewPrivs:\s+1/);
    expect(result.logTail).toMatch(/pid1=(docker-init|tini)/);
  });

  it('the pids limit stops a process explosion', async () => {
    // 40 background sleeps against a limit of 16 processes: some forks must fail.
    const script =
      'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; i=0; while [ $i -lt 40 ]; do sleep 1 & i=$((i+1)); done; wait';
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: ['sh', '-c', script], pids: 16 }));
    // stdout and stderr are interleaved in the engine's order, so find the line anywhere.
    expect(result.logTail.split('\n')).toContain('16');
    expect(result.logTail).toMatch(/can't fork/i);
  });

  it('memory is a hard limit without swap', async () => {
    const { result } = await runToEnd(
      runtime,
      busyboxSpec(FILE, {
        command: [
          'sh',
          '-c',
          'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max',
        ],
        memoryBytes: 40 * MiB,
      }),
    );
    const [memory, swap] = result.logTail.trim().split('\n');
    expect(Number(memory)).toBe(40 * MiB);
    // cgroup v1 reports memory+swap (equal to memory: no swap); v2 reports swap alone (0).
    expect([String(40 * MiB), '0']).toContain(swap);
  });
});
