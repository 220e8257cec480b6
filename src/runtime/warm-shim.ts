import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { RunFailedToStart } from './errors.js';
import { PAYLOAD_FILE_ENV, PAYLOAD_PATH } from './run-dir.js';

/**
 * The shim of a warm instance: runlet's own static busybox, copied into the container when
 * the instance is made (the image may have no shell at all), running a short script that
 * waits on stdin for exactly one event, then runs the task's command once with that run's
 * env and payload. It lives outside /runlet (the program's own directory) so the program
 * sees the same /runlet as in a cold run.
 */
export const SHIM_DIR = '/.runlet-shim';
export const SHIM_BUSYBOX = `${SHIM_DIR}/busybox`;
/** Debian's busybox-static (scripts/setup.sh installs it): statically linked, so it runs in any image. */
export const DEFAULT_SHIM_SOURCE = '/bin/busybox';

/** Exit code of a shim that got no (or a truncated) event: its stdin ended first. The command never ran. */
export const SHIM_NO_EVENT_EXIT = 125;

/**
 * The event on stdin: a header line `<env bytes> <payload bytes or -1>`, then the env as a
 * shell script of `export 'NAME'='value'` lines ending in a marker, then the payload once
 * for /runlet/payload.json, then the payload again, which stays on stdin for the command
 * (then EOF, as in a cold run). Every byte count is checked: a delivery cut short (runlet
 * died mid-write) makes the shim exit 125 without running the command, never run it with
 * half an env or half a payload.
 *
 * Counted parts are read with `dd bs=N count=1 iflag=fullblock`: one read of at most N
 * bytes, repeated until N, so nothing past the part leaves the pipe (busybox `head -c` reads
 * ahead and would swallow the payload meant for the command's stdin).
 *
 * Why a shell script and `eval`: values are single-quoted (a `'` becomes `'\''`), which
 * keeps every byte, newlines included, out of the shell's reach; the only text that is not
 * a quoted value is written here. Busybox here prefers its own applets to the image's
 * programs for a bare name (`cat`, `sh`), so the command is looked up on the container's
 * PATH by the script and exec'd by its full path, with its own name as argv[0] (`exec -a`),
 * as the engine would. Busybox ash exports nothing of its own (checked in
 * test/runtime.warm.test.ts: the command's env equals a cold run's).
 */
export const SHIM_SCRIPT = [
  'B=' + SHIM_BUSYBOX,
  `read -r L P || exit ${SHIM_NO_EVENT_EXIT}`,
  `E=$("$B" dd bs="$L" count=1 iflag=fullblock 2>/dev/null) || exit ${SHIM_NO_EVENT_EXIT}`,
  `eval "$E" && [ "$runlet_env_complete" = 1 ] || exit ${SHIM_NO_EVENT_EXIT}`,
  'unset E runlet_env_complete',
  'if [ "$P" -ge 0 ]; then',
  `  if [ "$P" -gt 0 ]; then "$B" dd bs="$P" count=1 iflag=fullblock 2>/dev/null; fi > ${PAYLOAD_PATH} || exit ${SHIM_NO_EVENT_EXIT}`,
  `  [ "$("$B" stat -c %s ${PAYLOAD_PATH})" = "$P" ] || exit ${SHIM_NO_EVENT_EXIT}`,
  `  "$B" chmod 0644 ${PAYLOAD_PATH}; export ${PAYLOAD_FILE_ENV}=${PAYLOAD_PATH}`,
  'fi',
  'c=$1; shift',
  'case $c in',
  '  */*) p=$c ;;',
  '  *) p=; set -f; o=$IFS; IFS=:',
  '     for d in $PATH; do [ -n "$d" ] || d=.; if [ -f "$d/$c" ] && [ -x "$d/$c" ]; then p=$d/$c; break; fi; done',
  '     IFS=$o; set +f',
  `     [ -n "$p" ] || { echo "runlet: $c: executable file not found in \\$PATH" >&2; exit 127; } ;;`,
  'esac',
  'unset B L P d o',
  'exec -a "$c" "$p" "$@"',
].join('\n');

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Variables the shim's shell sets and exports of its own (ash: SHLVL counts up, PWD is set):
 * the command must see them as the container had them (`base`: the image's env and the
 * instance's), which is what these lines restore before the run's own env is added.
 */
export const SHELL_OWN_VARS = ['SHLVL', 'PWD'] as const;

export function shellRestore(base: Readonly<Record<string, string>>): string[] {
  return SHELL_OWN_VARS.map((name) => (name in base ? `export ${name}=${shellQuote(base[name]!)}` : `unset ${name}`));
}

/** `NAME=value` lines (an image's Config.Env) as a record; the last of a name wins, as in the engine. */
export function envRecord(lines: readonly string[] | null | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of lines ?? []) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

/** The bytes deliver() writes on a warm instance's stdin (see SHIM_SCRIPT); `restore` from shellRestore. */
export function eventBytes(env: Readonly<Record<string, string>>, payload: string | undefined, restore: readonly string[] = []): Buffer {
  const lines: string[] = [...restore];
  for (const [name, value] of Object.entries(env)) {
    // The shell can export only such names; the engine would take others, so say so rather than drop one.
    if (!ENV_NAME.test(name)) throw new RunFailedToStart(`env name "${name}" cannot be given to a warm instance (letters, digits, _ only)`);
    if (name === PAYLOAD_FILE_ENV) continue; // ours, as in a cold run
    lines.push(`export ${name}=${shellQuote(value)}`);
  }
  lines.push('runlet_env_complete=1', '');
  const script = Buffer.from(lines.join('\n'), 'utf8');
  const body = payload === undefined ? undefined : Buffer.from(payload, 'utf8');
  const header = Buffer.from(`${script.length} ${body ? body.length : -1}\n`, 'ascii');
  return Buffer.concat(body ? [header, script, body, body] : [header, script]);
}

export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The command the image would run for `command` (ENTRYPOINT + CMD, as the engine combines them). */
export function imageCommand(
  config: { Entrypoint?: string[] | string | null; Cmd?: string[] | string | null },
  command?: readonly string[],
): string[] {
  const list = (v: string[] | string | null | undefined): string[] => (v == null ? [] : Array.isArray(v) ? v : [v]);
  const full = [...list(config.Entrypoint), ...(command ? command : list(config.Cmd))];
  if (full.length === 0) throw new RunFailedToStart('the image has no command and the task gives none');
  return full;
}

let busybox: Promise<Buffer> | undefined;

/**
 * Copies the shim's busybox into a created container (before start, off the hot path). Into
 * an anonymous volume when the rootfs is read-only (the engine refuses to write into a
 * read-only rootfs, as for /runlet): `inVolume` says which.
 */
export async function placeShim(container: Docker.Container, inVolume: boolean, source = DEFAULT_SHIM_SOURCE): Promise<void> {
  busybox ??= readFile(source).catch((err: unknown) => {
    busybox = undefined;
    throw new RunFailedToStart(`the warm-instance shim ${source} is missing (install Debian's busybox-static): ${String(err)}`);
  });
  const bytes = await busybox;
  const archive = pack();
  const owner = { uid: 0, gid: 0 };
  if (inVolume) archive.entry({ ...owner, name: '/', type: 'directory', mode: 0o755 });
  else archive.entry({ ...owner, name: SHIM_DIR.slice(1) + '/', type: 'directory', mode: 0o755 });
  archive.entry(
    { ...owner, name: inVolume ? 'busybox' : `${SHIM_BUSYBOX.slice(1)}`, type: 'file', mode: 0o755, size: bytes.length },
    bytes,
  );
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  await container.putArchive(Buffer.concat(chunks), { path: inVolume ? SHIM_DIR : '/' });
}
