import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import type { RunResult, RunSpec, Runtime, WaitOptions } from '../../src/runtime/types.js';

/** Built by scripts/build-images.sh; tests never pull. */
export const BUSYBOX = 'runlet/busybox:local';
export const NODE = 'runlet/node:local';
/** Every container a test creates carries this label (with its file name) for cleanup. */
export const TEST_LABEL = 'runlet.test';

export const docker = new Docker();

export function testLabels(file: string): Record<string, string> {
  // The suite's id (test/global-setup.ts) keeps a concurrent suite's teardown off our containers.
  return { [TEST_LABEL]: file, ...(process.env.RUNLET_TEST_SUITE && { 'runlet.x-suite': process.env.RUNLET_TEST_SUITE }) };
}

/** Force-removes these containers (and their anonymous volumes); one already gone is fine. */
export async function removeContainers(engine: Docker, containers: readonly { Id: string }[]): Promise<number> {
  await Promise.all(
    containers.map((c) =>
      engine
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
  return containers.length;
}

/** Removes every container of one cluster (one test Redis) on an engine (the local one unless given), and says how many there were. */
export async function removeClusterContainers(clusterId: string, docker: Docker = new Docker()): Promise<number> {
  return removeContainers(
    docker,
    await docker.listContainers({ all: true, filters: { label: [`runlet.cluster=${clusterId}`] } }).catch(() => []),
  );
}

/** Removes every container of one test file, whatever state the test left it in. */
export async function removeTestContainers(file: string): Promise<number> {
  return removeContainers(docker, await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${file}`] } }));
}

/** Fails fast, with the fix, when the local images are missing. */
export async function requireImages(...images: string[]): Promise<void> {
  for (const image of images) {
    await docker
      .getImage(image)
      .inspect()
      .catch(() => {
        throw new Error(`image ${image} is missing: run scripts/build-images.sh`);
      });
  }
}

export function uniqueRunId(): string {
  return `T${Date.now().toString(36)}${randomBytes(4).toString('hex')}`.toUpperCase();
}

/** A small busybox spec; tests override what they exercise. */
export function busyboxSpec(file: string, overrides: Partial<RunSpec> = {}): RunSpec {
  return {
    runId: uniqueRunId(),
    task: 'test',
    attempt: 1,
    image: BUSYBOX,
    command: ['sh', '-c', 'true'],
    env: {},
    memoryBytes: 64 * 1024 * 1024,
    cpus: 0.5,
    pids: 64,
    timeoutMs: 30_000,
    killGraceMs: 2_000,
    ...overrides,
    labels: { ...testLabels(file), ...overrides.labels },
  };
}

/** prepare → start → wait → remove, timing the part a user waits for (start to result). */
export async function runToEnd(
  runtime: Runtime,
  spec: RunSpec,
  opts?: WaitOptions,
  onStarted?: () => void,
): Promise<{ result: RunResult; elapsedMs: number; containerId: string }> {
  const prepared = await runtime.prepare(spec);
  try {
    await runtime.start(prepared);
    const started = Date.now();
    // Timers a test sets relative to the container's start (not to the call) do not drift
    // when a loaded machine takes a second to create the container.
    onStarted?.();
    const result = await runtime.wait(prepared, opts);
    return { result, elapsedMs: Date.now() - started, containerId: prepared.containerId };
  } finally {
    await runtime.remove(prepared.containerId);
  }
}

/** Whether the engine still has the container. */
export async function exists(containerId: string): Promise<boolean> {
  return docker
    .getContainer(containerId)
    .inspect()
    .then(
      () => true,
      (err: { statusCode?: number }) => {
        if (err.statusCode === 404) return false;
        throw err;
      },
    );
}

/**
 * Every container start of one cluster on an engine, from the engine's event stream, by run
 * id: the start markers a test counts to prove that no run ran twice (a run's containers all
 * carry `runlet.run`; a retry is another start of the same run).
 */
export async function watchStarts(clusterId: string, engine: Docker = docker): Promise<{ starts: Map<string, number>; stop: () => void }> {
  const starts = new Map<string, number>();
  const stream = (await engine.getEvents({
    filters: { type: ['container'], event: ['start'], label: [`runlet.cluster=${clusterId}`] },
  })) as NodeJS.ReadableStream & { destroy?: () => void };
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const run = (JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> } }).Actor?.Attributes?.['runlet.run'];
      if (run) starts.set(run, (starts.get(run) ?? 0) + 1);
    }
  });
  stream.on('error', () => undefined);
  return { starts, stop: () => stream.destroy?.() };
}
