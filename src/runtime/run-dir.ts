import type Docker from 'dockerode';
import { pack, type Pack } from 'tar-stream';
import type { RunSpec } from './types.js';

/**
 * /runlet, the run's own directory inside the container: the payload comes in there and the
 * program may leave its result there. These paths are documented for task authors: changing
 * one breaks every task that uses it.
 */
export const RUN_DIR = '/runlet';
export const PAYLOAD_PATH = `${RUN_DIR}/payload.json`;
export const OUTPUT_PATH = `${RUN_DIR}/output.json`;
/** Set (to PAYLOAD_PATH) only when the run has a payload. */
export const PAYLOAD_FILE_ENV = 'RUNLET_PAYLOAD_FILE';

/**
 * With a read-only root filesystem the engine refuses to write into the rootfs (even before
 * start), and so would the program: /runlet becomes an anonymous volume, which both can
 * write, the engine archives after exit like any path, and remove({ v: true }) deletes.
 * Otherwise /runlet lives in the container's own layer and no mount is added.
 */
export function usesRunDirVolume(spec: Pick<RunSpec, 'readOnly'>): boolean {
  return spec.readOnly === true;
}

/**
 * Whether `user` (docker's --user: name or uid, optionally :group; empty = root) is root. A
 * name other than "root" counts as not root: it is resolved inside the image, unseen here.
 */
export function isRootUser(user: string | undefined): boolean {
  const name = (user ?? '').split(':')[0]!.trim();
  return name === '' || name === 'root' || name === '0';
}

/**
 * The cheap way to /runlet, for a run with no payload whose program runs as root (the task's
 * `user`, else the image's USER): an anonymous volume without the engine's copy-up
 * (NoCopy), nothing copied in. Its root is root's, mode 0755, which root can write (as
 * owner, with every capability dropped); it outlives the exit like the container's layer, so
 * output.json is read the same way, and remove({ v: true }) deletes it. Skipping placeRunDir
 * saves the engine's archive helper: ~30 ms per run on a quiet 2-core machine, ~300 ms under
 * CPU contention (bench/README.md). Any other run (a payload to place, or a user that could
 * not write a 0755 root directory) gets placeRunDir's 1777 directory.
 */
export function runDirVolumeOnly(spec: RunSpec, imageUser: string | undefined): boolean {
  return spec.payload === undefined && isRootUser(spec.user || imageUser);
}

/** The mount of runDirVolumeOnly's /runlet. */
// Source '' makes it anonymous. @types/dockerode wants Labels and DriverConfig too; the engine does not.
export const RUN_DIR_VOLUME_MOUNT = {
  Type: 'volume',
  Source: '',
  Target: RUN_DIR,
  VolumeOptions: { NoCopy: true },
} as unknown as Docker.MountSettings;

/**
 * Creates /runlet (with payload.json when there is a payload) in a created container, before
 * it starts. The directory is root's with mode 1777, like /tmp: whichever user the program
 * runs as (spec.user or the image's USER, which we don't know here) can create output.json
 * in it, and nobody can delete another user's file. payload.json is 0644: readable by all.
 * Done for every run, payload or not (nothing else can make a directory in a container that
 * has not started): the engine unpacks in a re-executed helper of its own, which adds about
 * 50 ms to a trivial run (Docker 20.10: ~320 → ~375 ms median, prepare to remove).
 */
export async function placeRunDir(container: Docker.Container, spec: Pick<RunSpec, 'payload' | 'readOnly'>): Promise<void> {
  const payload = spec.payload === undefined ? undefined : Buffer.from(spec.payload, 'utf8');
  const inVolume = usesRunDirVolume(spec);
  // Into the volume the archive must be unpacked at /runlet itself (the engine checks the
  // target path, not the entries, against the read-only rootfs). There the directory's own
  // entry is named "/": the engine skips "." and "./", so only "/" sets the volume root's mode.
  const dirName = inVolume ? '/' : 'runlet/';
  const fileName = inVolume ? 'payload.json' : 'runlet/payload.json';
  const owner = { uid: 0, gid: 0 };
  const entries: TarEntry[] = [{ header: { ...owner, name: dirName, type: 'directory', mode: 0o1777 } }];
  if (payload) entries.push({ header: { ...owner, name: fileName, type: 'file', mode: 0o644, size: payload.length }, body: payload });
  await container.putArchive(await tarOf(entries), { path: inVolume ? RUN_DIR : '/' });
}

type TarEntry = { readonly header: Parameters<Pack['entry']>[0]; readonly body?: Buffer };

async function tarOf(entries: readonly TarEntry[]): Promise<Buffer> {
  const archive = pack();
  for (const { header, body } of entries) {
    if (body) archive.entry(header, body);
    else archive.entry(header);
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
