import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { removeContainers } from './helpers/docker.js';

let suiteStartedAt = 0;
/** This suite's id, put on every container its daemons start (RUNLET_LABELS) and runtime tests make. */
const SUITE = randomBytes(6).toString('hex');
export const SUITE_LABEL = 'runlet.x-suite';

export function setup(): void {
  // Seconds, as the engine reports `Created`; containers older than this run are another
  // run's business.
  suiteStartedAt = Math.floor(Date.now() / 1000) - 1;
  // Set before vitest forks its workers, so they inherit it; daemon processes the tests
  // spawn inherit it from them.
  process.env.RUNLET_TEST_SUITE = SUITE;
  process.env.RUNLET_LABELS = `${SUITE_LABEL}=${SUITE}`;
}

/**
 * After the whole suite: no container that runlet or a test created may remain. They are
 * found by label, removed, and the suite fails naming them, so a leak cannot go unnoticed.
 * Another suite running at the same time on the same engine (a second checkout, a helper)
 * labels its containers with its own suite id: those are left alone.
 */
export async function teardown(): Promise<void> {
  const docker = new Docker();
  const all = await docker.listContainers({ all: true, filters: { label: ['runlet.managed'] } });
  const left = all.filter((c) => c.Created >= suiteStartedAt && (c.Labels[SUITE_LABEL] ?? SUITE) === SUITE);
  await removeContainers(docker, left);
  if (left.length > 0) {
    // vitest reports a teardown error but keeps its exit code: set ours so CI goes red.
    process.exitCode = 1;
    const names = left.map((c) => `${c.Id.slice(0, 12)} ${JSON.stringify(c.Labels)} ${c.State}`).join('\n  ');
    throw new Error(`${left.length} runlet-labelled container(s) were left behind by the suite:\n  ${names}`);
  }
  console.log('no runlet-labelled container left behind');
}
