import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { BUSYBOX, busyboxSpec, docker, removeTestContainers, requireImages, runToEnd } from './helpers/docker.js';

const FILE = 'runtime.oom';
const MiB = 1024 * 1024;

describe('DockerRuntime: memory limit', () => {
  const runtime = new DockerRuntime({ docker });
  beforeAll(() => requireImages(BUSYBOX));
  afterAll(() => removeTestContainers(FILE));

  it('a program past its memory limit is oom_killed, not "exit 137"', async () => {
    // The shell holds 100 MB in a variable: with 32 MiB and no swap the kernel kills it in
    // well under a second. (A node Buffer loop under 64 MiB also works but takes ~30 s of reclaim.)
    const hog = 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo "held ${#x}"';
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: ['sh', '-c', hog], memoryBytes: 32 * MiB }));
    expect(result).toMatchObject({ outcome: 'oom_killed', reason: 'exceeded memory limit of 32 MiB', exitCode: 137 });
    expect(result.logTail).not.toContain('held');
  });

  it('the same program under a large enough limit succeeds (the limit, not the program, decided)', async () => {
    const fits = 'x=$(head -c 10000000 /dev/zero | tr "\\0" a); echo "held ${#x}"';
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: ['sh', '-c', fits], memoryBytes: 128 * MiB }));
    expect(result).toMatchObject({ outcome: 'succeeded' });
    expect(result.logTail).toContain('held 10000000');
  });
});
