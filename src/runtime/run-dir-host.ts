import { constants } from 'node:fs';
import { chmod, open, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { judgedOutput, refusedOutput, type CapturedOutput } from './output.js';
import { RUN_DIR } from './run-dir.js';

/**
 * /runlet through the host's filesystem, when it is a local volume this process can see.
 *
 * Why: the engine copies files in and out of a container (putArchive, getArchive) in a
 * re-executed helper of its own, ~120 ms for one small file on a quiet 2-core machine
 * (Docker 20.10; bench/README.md, "exit-cost"), paid by every run that leaves an output.json
 * (a function's answer waits for it) and every run with a payload. With a read-only root
 * filesystem, the default, /runlet is an anonymous volume of the `local` driver: a directory
 * on the engine's host whose path the engine reports (Mounts[].Source). When runlet runs on
 * that host with the rights to read it, the file is read and written there directly.
 * Anything else (a remote engine, runlet in a container of its own, no rights, another
 * volume driver, a rootfs that is not read-only) answers `undefined` and the caller uses the
 * engine's archive API as before.
 *
 * Safety: the directory's content is the program's, so output.json is opened with O_NOFOLLOW
 * (a symlink to a host file is refused, never followed) and O_NONBLOCK (a FIFO cannot hang
 * the read), and fstat decides its type and size before a byte is read. The directory
 * itself is the volume's root, made by the engine: the container cannot replace it.
 */
export function runDirSource(info: Pick<Docker.ContainerInspectInfo, 'Mounts'> | undefined): string | undefined {
  const mount = info?.Mounts?.find((m) => m.Destination === RUN_DIR && m.Type === 'volume' && (m.Driver ?? 'local') === 'local');
  return mount?.Source || undefined;
}

/** Whether `dir` is a directory this process can reach (the engine is local and we may look). */
async function reachable(dir: string): Promise<boolean> {
  return stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** output.json as readOutput would return it, or undefined when the host path cannot be used. */
export async function readOutputOnHost(dir: string): Promise<CapturedOutput | undefined> {
  if (!(await reachable(dir))) return undefined;
  let handle;
  try {
    handle = await open(join(dir, 'output.json'), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return {};
    if (code === 'ELOOP') return refusedOutput('symlink', 0);
    return undefined;
  }
  try {
    const s = await handle.stat();
    const refused = refusedOutput(typeOf(s), s.size);
    if (refused) return refused;
    const buf = Buffer.alloc(s.size);
    const { bytesRead } = await handle.read(buf, 0, s.size, 0);
    return judgedOutput(buf.subarray(0, bytesRead).toString('utf8'));
  } catch {
    return undefined;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The names tar gives these types (what the archive path reports), for refusedOutput. */
function typeOf(s: Awaited<ReturnType<typeof stat>>): string {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'directory';
  if (s.isFIFO()) return 'fifo';
  if (s.isCharacterDevice()) return 'character-device';
  if (s.isBlockDevice()) return 'block-device';
  if (s.isSocket()) return 'socket';
  return 'special file';
}

/**
 * placeRunDir's result written on the host: the volume root 1777 (any user the program runs
 * as can create output.json; nobody can delete another's file), payload.json 0644 owned by
 * us. Only before the container starts, so nothing in the directory is the program's yet.
 * False when the host path cannot be used (the caller then uses the archive API, which
 * writes the same over whatever was written here).
 */
export async function placeRunDirOnHost(dir: string, payload: Buffer | undefined): Promise<boolean> {
  if (!(await reachable(dir))) return false;
  try {
    await chmod(dir, 0o1777);
    if (payload) {
      const file = join(dir, 'payload.json');
      await writeFile(file, payload, {
        flag: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
        mode: 0o644,
      });
      // The mode given to open is narrowed by the umask; the file must be readable by every user.
      await chmod(file, 0o644);
    }
    return true;
  } catch {
    return false;
  }
}
