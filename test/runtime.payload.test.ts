import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { OUTPUT_LIMIT_BYTES } from '../src/runtime/output.js';
import type { RunSpec } from '../src/runtime/types.js';
import { BUSYBOX, busyboxSpec as specOf, docker, NODE, removeTestContainers, requireImages, runToEnd } from './helpers/docker.js';

const FILE = 'runtime.payload';

/** BUSYBOX with `USER 65534:65534`, built locally (nothing is pulled: the base is on the engine). */
async function buildNonRootImage(tag: string): Promise<void> {
  const { stderr } = await exec('docker', ['build', '-q', '-t', tag, '-'], {
    input: `FROM ${BUSYBOX}\nUSER 65534:65534\n`,
  });
  const inspected = await docker.getImage(tag).inspect();
  if (inspected.Config.User !== '65534:65534') throw new Error(`built ${tag} without its USER: ${stderr}`);
}

function exec(cmd: string, args: string[], opts: { input: string }): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, (err, stdout, stderr) => (err ? reject(err) : resolve({ stdout, stderr })));
    child.stdin?.end(opts.input);
  });
}
const sh = (script: string) => ['sh', '-c', script];
/** Pretty-printed (so several lines), with 2-, 3- and 4-byte characters and an escaped newline inside a string. */
const PAYLOAD = `${JSON.stringify({ greeting: 'héllo wörld ✓ 🚀', text: 'line one\nline two', list: [1, 2, 3] }, null, 2)}\n`;

/**
 * /runlet three ways, each test run in each: in the container's own layer (a writable rootfs:
 * the engine's archive API), in a volume read and written on the host (a read-only rootfs,
 * the default: run-dir-host.ts), and in a volume through the engine (runDirOnHost: false, as
 * when the engine is remote or runlet may not read its volumes).
 */
const WAYS = [
  { way: 'in the container layer', readOnly: false, runDirOnHost: true },
  { way: 'in a volume, on the host', readOnly: true, runDirOnHost: true },
  { way: 'in a volume, through the engine', readOnly: true, runDirOnHost: false },
] as const;

describe.each(WAYS)('DockerRuntime: the payload goes in on stdin and in /runlet/payload.json ($way)', ({ readOnly, runDirOnHost }) => {
  const runtime = new DockerRuntime({ docker, runDirOnHost });
  const busyboxSpec = (file: string, o: Partial<RunSpec> = {}) => specOf(file, { readOnly, ...o });
  beforeAll(() => requireImages(BUSYBOX, NODE));
  afterAll(() => removeTestContainers(FILE));

  it('arrives on stdin byte for byte, then EOF', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('cat'), payload: PAYLOAD, timeoutMs: 10_000 }));
    expect(result.outcome).toBe('succeeded');
    expect(result.logTail).toBe(PAYLOAD);
  });

  it('is in the file $RUNLET_PAYLOAD_FILE names (/runlet/payload.json) byte for byte, 0644 in a 1777 /runlet', async () => {
    const script =
      '[ "$RUNLET_PAYLOAD_FILE" = /runlet/payload.json ] || exit 7; [ "$(stat -c %a /runlet)" = 1777 ] || exit 8; [ "$(stat -c %a "$RUNLET_PAYLOAD_FILE")" = 644 ] || exit 9; cat "$RUNLET_PAYLOAD_FILE"';
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(script), payload: PAYLOAD }));
    expect(result).toMatchObject({ outcome: 'succeeded', exitCode: 0 });
    expect(result.logTail).toBe(PAYLOAD);
  });

  it('a 512 KiB payload is read whole from stdin', async () => {
    const payload = JSON.stringify('x'.repeat(512 * 1024 - 2));
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('wc -c'), payload, timeoutMs: 10_000 }));
    expect(result.outcome).toBe('succeeded');
    expect(result.logTail.trim()).toBe(String(512 * 1024));
  });

  it('a program that never reads its 512 KiB payload still ends promptly, with its own outcome', async () => {
    const payload = JSON.stringify('x'.repeat(512 * 1024 - 2));
    const quick = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('echo ignored'), payload, timeoutMs: 10_000 }));
    expect(quick.result).toMatchObject({ outcome: 'succeeded', logTail: 'ignored\n' });
    expect(quick.elapsedMs).toBeLessThan(3_000);
    // Still running while the write is stuck behind a full pipe; then exits non-zero.
    const slow = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('sleep 1; exit 4'), payload, timeoutMs: 10_000 }));
    expect(slow.result).toMatchObject({ outcome: 'failed', exitCode: 4 });
    expect(slow.elapsedMs).toBeLessThan(4_000);
  });

  it('without a payload stdin is at EOF at once, and /runlet exists without payload.json or its env var', async () => {
    const script = 'cat; [ -z "$RUNLET_PAYLOAD_FILE" ] && [ -d /runlet ] && [ ! -e /runlet/payload.json ] && echo ok';
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(script), timeoutMs: 5_000 }));
    expect(result).toMatchObject({ outcome: 'succeeded', logTail: 'ok\n' });
  });

  // Without a payload a root program gets /runlet as a bare volume (nothing copied in); any
  // other user still gets a 1777 directory. Both must be able to leave output.json.
  it('without a payload, root, a non-root user and an image whose USER is not root can all write /runlet/output.json', async () => {
    const write = 'id -u; echo "{\\"uid\\": $(id -u)}" > /runlet/output.json';
    const asRoot = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(write) }));
    expect(asRoot.result).toMatchObject({ outcome: 'succeeded', logTail: '0\n', output: '{"uid": 0}\n' });
    const asNobody = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(write), user: '65534:65534' }));
    expect(asNobody.result).toMatchObject({ outcome: 'succeeded', logTail: '65534\n', output: '{"uid": 65534}\n' });
    const readOnlyNamed = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(write), user: 'nobody', readOnly: true }));
    expect(readOnlyNamed.result).toMatchObject({ outcome: 'succeeded', logTail: '65534\n', output: '{"uid": 65534}\n' });
    const readOnlyRoot = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(write), readOnly: true }));
    expect(readOnlyRoot.result).toMatchObject({ outcome: 'succeeded', output: '{"uid": 0}\n' });
    // An image built with a non-root USER (the spec names none): the image's user is asked for.
    const image = 'runlet/busybox-nobody:test-payload';
    await buildNonRootImage(image);
    try {
      const imageUser = await runToEnd(runtime, busyboxSpec(FILE, { image, command: sh(write) }));
      expect(imageUser.result).toMatchObject({ outcome: 'succeeded', logTail: '65534\n', output: '{"uid": 65534}\n' });
    } finally {
      await docker
        .getImage(image)
        .remove({ force: true })
        .catch(() => undefined);
    }
  });

  it('an image without /runlet (FROM scratch, node only) gets it: payload in, output out', async () => {
    const program =
      "const fs = require('fs'); const p = JSON.parse(fs.readFileSync(process.env.RUNLET_PAYLOAD_FILE, 'utf8')); fs.writeFileSync('/runlet/output.json', JSON.stringify({ got: p.greeting }));";
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { image: NODE, command: ['node', '-e', program], payload: PAYLOAD }));
    expect(result.outcome).toBe('succeeded');
    expect(result.output).toBe(JSON.stringify({ got: 'héllo wörld ✓ 🚀' }));
    expect(result.outputError).toBeUndefined();
  });
});

describe.each(WAYS)('DockerRuntime: /runlet/output.json comes back in the result ($way)', ({ readOnly, runDirOnHost }) => {
  const runtime = new DockerRuntime({ docker, runDirOnHost });
  const busyboxSpec = (file: string, o: Partial<RunSpec> = {}) => specOf(file, { readOnly, ...o });
  beforeAll(() => requireImages(BUSYBOX));
  afterAll(() => removeTestContainers(FILE));
  /** Writes a JSON string of exactly `bytes` bytes to /runlet/output.json. */
  const jsonOfSize = (bytes: number) => `{ printf '"'; head -c ${bytes - 2} /dev/zero | tr '\\0' x; printf '"'; } > /runlet/output.json`;

  it('the text the program wrote, as it wrote it', async () => {
    const { result } = await runToEnd(
      runtime,
      busyboxSpec(FILE, { command: sh(`printf '%s' '{"total": 42, "name": "ünïcode"}' > /runlet/output.json`) }),
    );
    expect(result).toMatchObject({ outcome: 'succeeded', output: '{"total": 42, "name": "ünïcode"}' });
    expect(result.outputError).toBeUndefined();
  });

  it('is kept from a run that failed too', async () => {
    const { result } = await runToEnd(
      runtime,
      busyboxSpec(FILE, { command: sh(`echo '{"error":"bad input"}' > /runlet/output.json; exit 3`) }),
    );
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 3, output: '{"error":"bad input"}\n' });
  });

  it('exactly 1 MiB is stored', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(jsonOfSize(OUTPUT_LIMIT_BYTES)) }));
    expect(result.outputError).toBeUndefined();
    expect(Buffer.byteLength(result.output ?? '')).toBe(OUTPUT_LIMIT_BYTES);
  });

  it('over 1 MiB is not stored, and outputError says so with the size', async () => {
    const big = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(jsonOfSize(2 * 1024 * 1024)) }));
    expect(big.result.outcome).toBe('succeeded');
    expect(big.result.output).toBeUndefined();
    expect(big.result.outputError).toBe('output.json is 2 MiB, over the 1 MiB limit; not stored');
    const justOver = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(jsonOfSize(OUTPUT_LIMIT_BYTES + 1)) }));
    expect(justOver.result.output).toBeUndefined();
    expect(justOver.result.outputError).toMatch(/over the 1 MiB limit; not stored$/);
  });

  it('invalid JSON is kept as text, with outputError giving the parser message', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh(`printf '{"unterminated": ' > /runlet/output.json`) }));
    expect(result.output).toBe('{"unterminated": ');
    expect(result.outputError).toMatch(/^output\.json is not valid JSON: .+/);
  });

  it('no output.json: neither output nor outputError', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('echo no output') }));
    expect(result.outcome).toBe('succeeded');
    expect(result).not.toHaveProperty('output');
    expect(result).not.toHaveProperty('outputError');
  });

  it('an output.json that is not a regular file is refused by name', async () => {
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('mkdir /runlet/output.json') }));
    expect(result.output).toBeUndefined();
    expect(result.outputError).toBe('output.json is a directory, not a regular file; not stored');
  });

  // Read on the host, a symlink would point into the host's own filesystem: never followed.
  it('a symlink (to a file the host has) or a FIFO is refused by name, never followed or waited on', async () => {
    const link = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('ln -s /etc/hostname /runlet/output.json') }));
    expect(link.result).toMatchObject({ outcome: 'succeeded', outputError: 'output.json is a symlink, not a regular file; not stored' });
    expect(link.result.output).toBeUndefined();
    const fifo = await runToEnd(runtime, busyboxSpec(FILE, { command: sh('mkfifo /runlet/output.json') }));
    expect(fifo.result).toMatchObject({ outcome: 'succeeded', outputError: 'output.json is a fifo, not a regular file; not stored' });
  });
});
