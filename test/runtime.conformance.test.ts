import { beforeAll } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { busyboxSpec, docker, removeTestContainers, requireImages, BUSYBOX, testLabels } from './helpers/docker.js';
import { runtimeConformance } from './helpers/runtime-conformance.js';

const FILE = 'runtime.conformance';

beforeAll(() => requireImages(BUSYBOX));

runtimeConformance('DockerRuntime', () => new DockerRuntime({ docker }), {
  shellSpec: (script, overrides) => busyboxSpec(FILE, { command: ['sh', '-c', script], ...overrides }),
  missingImage: 'runlet/does-not-exist:local',
  labels: testLabels(FILE),
  cleanup: async () => {
    await removeTestContainers(FILE);
  },
});
