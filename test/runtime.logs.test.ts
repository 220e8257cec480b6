import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { BUSYBOX, busyboxSpec, docker, removeTestContainers, requireImages, runToEnd } from './helpers/docker.js';

const FILE = 'runtime.logs';

describe('DockerRuntime: the log tail', () => {
  const runtime = new DockerRuntime({ docker });
  beforeAll(() => requireImages(BUSYBOX));
  afterAll(() => removeTestContainers(FILE));

  // The engine writes a final line without a newline only at exit, which a follow stream
  // could end before; the tail is read from the finished log. Repeated, because the race
  // it guards against lost the line in about one run of four.
  it('keeps a last line that has no trailing newline', async () => {
    for (let i = 0; i < 8; i++) {
      const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: ['sh', '-c', `echo first; printf 'result ${i}'`] }));
      expect(result.logTail).toBe(`first\nresult ${i}`);
    }
  });
});
