/**
 * What /runlet costs a trivial run, engine only: the same container (floor hardening, `true`)
 * with no /runlet, with /runlet copied in by putArchive before start (placeRunDir: a payload
 * or a non-root user), and with /runlet as an anonymous NoCopy volume (runDirVolumeOnly: no
 * payload, root). Each also asks for /runlet/output.json after exit, as the runtime does.
 * Alternated, create → removed.
 *
 *   node dist/bench/run-dir-cost.js [runs=20]
 */
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { RUN_DIR_VOLUME_MOUNT } from '../src/runtime/run-dir.js';
import { floorCreateOptions, stats, detectCgroup, removeBenchContainers } from './lib.js';
const docker = new Docker();
async function tarDir(): Promise<Buffer> {
  const a = pack();
  a.entry({ name: 'runlet/', type: 'directory', mode: 0o1777, uid: 0, gid: 0 });
  a.finalize();
  const cs: Buffer[] = [];
  for await (const c of a) cs.push(c as Buffer);
  return Buffer.concat(cs);
}
async function one(mode: string): Promise<number> {
  const o = floorCreateOptions('run-dir-cost', ['true']);
  if (mode === 'volume') o.HostConfig = { ...o.HostConfig, Mounts: [RUN_DIR_VOLUME_MOUNT] };
  const t0 = performance.now();
  const c = await docker.createContainer(o);
  if (mode === 'put') await c.putArchive(await tarDir(), { path: '/' });
  await c.start();
  await c.wait();
  await c.inspect();
  await c.getArchive({ path: '/runlet/output.json' }).catch(() => undefined);
  await c.remove({ force: true, v: true });
  return performance.now() - t0;
}
await detectCgroup(docker);
const r: Record<string, number[]> = { none: [], put: [], volume: [] };
for (const m of Object.keys(r)) await one(m);
for (let i = 0; i < Number(process.argv[2] ?? 20); i++) for (const m of Object.keys(r)) r[m]!.push(await one(m));
const names: Record<string, string> = { none: 'no /runlet', put: 'putArchive of /runlet (1777)', volume: 'anonymous NoCopy volume' };
for (const [m, xs] of Object.entries(r)) {
  const s = stats(xs);
  console.log(`${names[m]}: p50 ${s.p50.toFixed(0)} ms, p95 ${s.p95.toFixed(0)} ms (${xs.length} runs)`);
}
await removeBenchContainers(docker, 'run-dir-cost');
process.exit(0);
