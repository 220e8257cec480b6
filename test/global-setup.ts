import Docker from 'dockerode';

let suiteStartedAt = 0;

export function setup(): void {
  // Seconds, as the engine reports `Created`; containers older than this run are another
  // run's business (a developer may run two suites at once).
  suiteStartedAt = Math.floor(Date.now() / 1000) - 1;
}

/**
 * After the whole suite: no container that runlet or a test created may remain. They are
 * found by label, removed, and the suite fails naming them, so a leak cannot go unnoticed.
 */
export async function teardown(): Promise<void> {
  const docker = new Docker();
  const all = await docker.listContainers({ all: true, filters: { label: ['runlet.managed'] } });
  const left = all.filter((c) => c.Created >= suiteStartedAt);
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
  if (left.length > 0) {
    // vitest reports a teardown error but keeps its exit code: set ours so CI goes red.
    process.exitCode = 1;
    const names = left.map((c) => `${c.Id.slice(0, 12)} ${JSON.stringify(c.Labels)} ${c.State}`).join('\n  ');
    throw new Error(`${left.length} runlet-labelled container(s) were left behind by the suite:\n  ${names}`);
  }
  console.log('no runlet-labelled container left behind');
}
