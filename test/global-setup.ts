import Docker from 'dockerode';

/**
 * After the whole suite: no container that runlet or a test created may remain. They are
 * found by label, removed, and the suite fails naming them, so a leak cannot go unnoticed.
 */
export async function teardown(): Promise<void> {
  const docker = new Docker();
  const left = await docker.listContainers({ all: true, filters: { label: ['runlet.managed'] } });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  if (left.length > 0) {
    const names = left.map((c) => `${c.Id.slice(0, 12)} ${JSON.stringify(c.Labels)} ${c.State}`).join('\n  ');
    throw new Error(`${left.length} runlet-labelled container(s) were left behind by the suite:\n  ${names}`);
  }
}
