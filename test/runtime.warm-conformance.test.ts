import { beforeAll } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { LABEL_RUN } from '../src/runtime/labels.js';
import type { OwnedContainer, PreparedRun, RunSpec, Runtime, WarmInstance } from '../src/runtime/types.js';
import { busyboxSpec, docker, removeTestContainers, requireImages, BUSYBOX, testLabels } from './helpers/docker.js';
import { runtimeConformance } from './helpers/runtime-conformance.js';
import { warmSpecOf } from './helpers/warm.js';

const FILE = 'runtime.warm-conformance';
/** Test-only: lets this wrapper's list() find the warm container made for a given run (warm containers carry no runlet.run). */
const FOR_RUN = 'runlet.x-conformance-run';

/**
 * The Runtime contract, every run delivered through a warm instance: prepare() makes and
 * starts a warm instance (its shim idle), start() delivers the run to it. From the program's
 * side nothing may differ from a cold run, so the whole suite must pass unchanged. list() is
 * translated (a warm container is not labelled with a run; the test label says which run
 * this wrapper made it for) so the re-attach tests check that a delivered warm container can
 * be waited on by a fresh runtime like any other.
 */
class WarmDelivered implements Runtime {
  private readonly inner = new DockerRuntime({ docker });
  private readonly instances = new Map<string, WarmInstance>();

  async prepare(spec: RunSpec): Promise<PreparedRun> {
    const instance = await this.inner.warm({ ...warmSpecOf(spec), labels: { ...spec.labels, [FOR_RUN]: spec.runId } });
    this.instances.set(instance.containerId, instance);
    return { runId: spec.runId, containerId: instance.containerId, spec };
  }
  async start(run: PreparedRun): Promise<void> {
    await this.inner.deliver(this.instances.get(run.containerId)!, run.spec);
  }
  wait: Runtime['wait'] = (run, opts) => this.inner.wait(run, opts);
  remove: Runtime['remove'] = (id) => this.inner.remove(id);
  kill: Runtime['kill'] = (id, opts) => this.inner.kill(id, opts);
  async list(labels: Readonly<Record<string, string>>): Promise<OwnedContainer[]> {
    const { [LABEL_RUN]: runId, ...rest } = labels;
    const found = await this.inner.listWarm({ ...rest, ...(runId !== undefined && { [FOR_RUN]: runId }) });
    return Promise.all(
      found.map(async (c) => {
        const info = await docker.getContainer(c.containerId).inspect();
        return {
          containerId: c.containerId,
          runId: c.labels[FOR_RUN]!,
          task: c.task,
          labels: c.labels,
          running: c.running,
          startedAt: Date.parse(info.State.StartedAt),
        };
      }),
    );
  }
  adopt: Runtime['adopt'] = (container, spec) => this.inner.adopt(container, spec);
}

beforeAll(() => requireImages(BUSYBOX));

runtimeConformance('DockerRuntime through warm instances', () => new WarmDelivered(), {
  shellSpec: (script, overrides) => busyboxSpec(FILE, { command: ['sh', '-c', script], ...overrides }),
  missingImage: 'runlet/does-not-exist:local',
  labels: testLabels(FILE),
  cleanup: async () => {
    await removeTestContainers(FILE);
  },
});
