import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../src/config/defaults.js';
import { DockerRuntime } from '../src/runtime/docker.js';
import { RunFailedToStart } from '../src/runtime/errors.js';
import { LABEL_RUN, LABEL_WARM } from '../src/runtime/labels.js';
import type { RunSpec } from '../src/runtime/types.js';
import { BUSYBOX, busyboxSpec, docker, exists, NODE, removeTestContainers, requireImages, runToEnd, testLabels } from './helpers/docker.js';
import { warmSpecOf } from './helpers/warm.js';

const FILE = 'runtime.warm';
const MiB = 1024 * 1024;

describe('DockerRuntime: warm instances', () => {
  const runtime = new DockerRuntime({ docker });
  beforeAll(() => requireImages(BUSYBOX, NODE));
  afterAll(() => removeTestContainers(FILE));

  /** warm → deliver → wait → remove. */
  async function warmRun(spec: RunSpec, idleMs = 0) {
    const instance = await runtime.warm(warmSpecOf(spec));
    if (idleMs) await new Promise((resolve) => setTimeout(resolve, idleMs));
    const delivered = await runtime.deliver(instance, spec);
    try {
      const result = await runtime.wait(delivered);
      return { result, delivered, endedAt: Date.now() };
    } finally {
      await runtime.remove(delivered.containerId);
    }
  }

  it('a node program (an image without a shell) sees the same env, argv, stdin and payload as in a cold run, and runs once', async () => {
    // Prints what a program can see of how it was started; HOSTNAME is the container's id, different per container.
    const program = `const fs = require('fs');
      const { HOSTNAME, ...env } = process.env;
      fs.appendFileSync('/runlet/output.json', JSON.stringify({ env, argv0: process.argv0, argv: process.argv.slice(1), cwd: process.cwd(),
        stdin: fs.readFileSync(0, 'utf8'), file: fs.readFileSync(process.env.RUNLET_PAYLOAD_FILE, 'utf8'), runlet: fs.readdirSync('/runlet') }));`;
    const payload = '{"text": "ünïcödé \'quoted\' $HOME `x`\\n"}';
    const env = { RUNLET_RUN_ID: 'R1', RUNLET_TASK: 'warm-node', TRICKY: 'it\'s\n$(echo no) `no` \\ "', EMPTY: '' };
    const spec = busyboxSpec(FILE, {
      image: NODE,
      command: ['node', '-e', program, 'arg 1', "arg'2"],
      env,
      payload,
      memoryBytes: 128 * MiB,
    });
    const cold = await runToEnd(runtime, spec);
    const warm = await warmRun({ ...spec, runId: `${spec.runId}W` });
    expect(cold.result.outcome).toBe('succeeded');
    expect(warm.result.outcome).toBe('succeeded');
    // One JSON object: the program ran once (a second run would have appended a second).
    const seenWarm = JSON.parse(warm.result.output!);
    expect(seenWarm).toEqual(JSON.parse(cold.result.output!));
    expect(seenWarm.env).toMatchObject(env);
    expect(seenWarm).toMatchObject({ argv0: 'node', stdin: payload, file: payload, runlet: ['payload.json'] });
    // The shim ended with the program: the container has exited.
    expect(
      (
        await docker
          .getContainer(warm.delivered.containerId)
          .inspect()
          .catch(() => undefined)
      )?.State.Running ?? false,
    ).toBe(false);
  });

  it('without a payload there is no payload file and stdin is at EOF at once, as in a cold run', async () => {
    const spec = busyboxSpec(FILE, { command: ['sh', '-c', 'echo "file=${RUNLET_PAYLOAD_FILE-unset}"; ls /runlet; cat; echo end'] });
    const { result } = await warmRun(spec);
    expect(result).toMatchObject({ outcome: 'succeeded', logTail: 'file=unset\nend\n' });
  });

  it('an idle warm instance is listed by its label (not as a run), found by a fresh runtime and removed by it', async () => {
    const spec = busyboxSpec(FILE, { command: ['sh', '-c', 'echo should-never-run'] });
    const instance = await runtime.warm(warmSpecOf(spec));
    const successor = new DockerRuntime({ docker });
    const found = await successor.listWarm(testLabels(FILE));
    const mine = found.find((c) => c.containerId === instance.containerId);
    expect(mine).toMatchObject({ kind: 'warm', instanceId: instance.instanceId, task: spec.task, running: true });
    expect(mine!.labels[LABEL_WARM]).toBe(instance.instanceId);
    expect(mine!.labels[LABEL_RUN]).toBeUndefined();
    // The runs' re-attach path does not take it for a run.
    expect((await successor.list(testLabels(FILE))).map((c) => c.containerId)).not.toContain(instance.containerId);
    for (const c of found) await successor.remove(c.containerId);
    expect(await exists(instance.containerId)).toBe(false);
    const { idleMs } = await runtime.retire(instance); // idempotent once gone
    expect(idleMs).toBeGreaterThanOrEqual(0);
  });

  it('delivery is faster than a cold create+start (ratio printed)', async () => {
    // From the call to the first byte the program writes, as the log follower sees it: the
    // same measure for both, alternating so machine noise hits both alike.
    const firstByte = async (warm: boolean) => {
      const spec = busyboxSpec(FILE, { command: ['echo', 'hi'] });
      const instance = warm ? await runtime.warm(warmSpecOf(spec)) : undefined;
      const t0 = performance.now();
      let first = 0;
      let run;
      if (instance) run = await runtime.deliver(instance, spec);
      else {
        run = await runtime.prepare(spec);
        await runtime.start(run);
      }
      try {
        await runtime.wait(run, { onLog: () => (first ||= performance.now() - t0) });
      } finally {
        await runtime.remove(run.containerId);
      }
      return first;
    };
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) {
      cold.push(await firstByte(false));
      warm.push(await firstByte(true));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(
      `[warm] call → first output byte, median of 5: cold create+start ${median(cold).toFixed(1)} ms, warm deliver ${median(warm).toFixed(1)} ms, ratio ${(median(warm) / median(cold)).toFixed(3)}`,
    );
    expect(median(warm)).toBeGreaterThan(0);
    expect(median(warm)).toBeLessThan(median(cold));
  });

  it('the timeout counts from delivery, not from the instance start', async () => {
    // Idle 2.5 s, then a 2 s timeout: counted from the container's start it would be over at delivery.
    const fits = await warmRun(busyboxSpec(FILE, { command: ['sh', '-c', 'sleep 0.5; echo done'], timeoutMs: 2_000 }), 2_500);
    expect(fits.result).toMatchObject({ outcome: 'succeeded', logTail: 'done\n' });
    expect(fits.result.startedAt).toBe(fits.delivered.deliveredAt);
    expect(fits.delivered.idleMs).toBeGreaterThanOrEqual(2_500);

    const late = await warmRun(busyboxSpec(FILE, { command: ['sleep', '30'], timeoutMs: 1_000, killGraceMs: 1_000 }), 1_500);
    expect(late.result.outcome).toBe('timed_out');
    expect(late.endedAt - late.delivered.deliveredAt).toBeGreaterThanOrEqual(1_000);
  });

  it('exit codes and the memory limit read as in a cold run', async () => {
    const failed = await warmRun(busyboxSpec(FILE, { command: ['sh', '-c', 'echo bad >&2; exit 7'] }));
    expect(failed.result).toMatchObject({ outcome: 'failed', exitCode: 7, logTail: 'bad\n' });
    const hog = 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo "held ${#x}"';
    const oom = await warmRun(busyboxSpec(FILE, { command: ['sh', '-c', hog], memoryBytes: 32 * MiB }));
    expect(oom.result).toMatchObject({ outcome: 'oom_killed', reason: 'exceeded memory limit of 32 MiB', exitCode: 137 });
    const missing = await warmRun(busyboxSpec(FILE, { command: ['no-such-program'] }));
    expect(missing.result).toMatchObject({ outcome: 'failed', exitCode: 127 });
    expect(missing.result.logTail).toContain('no-such-program: executable file not found');
  });

  it('a run that does not fit the instance, or a second run, is refused without running anything', async () => {
    const spec = busyboxSpec(FILE, { command: ['sh', '-c', 'echo ran'] });
    const instance = await runtime.warm(warmSpecOf(spec));
    try {
      await expect(runtime.deliver(instance, { ...spec, memoryBytes: spec.memoryBytes * 2 })).rejects.toThrow(/limits differs/);
      const delivered = await runtime.deliver(instance, spec);
      await expect(runtime.deliver(instance, spec)).rejects.toBeInstanceOf(RunFailedToStart);
      expect(await runtime.wait(delivered)).toMatchObject({ outcome: 'succeeded', logTail: 'ran\n' });
    } finally {
      await runtime.retire(instance);
    }
  });

  it('an idle instance whose runlet process dies exits by itself (125) without running the command', async () => {
    // The built runtime (npm test builds it first, as for the CLI tests) in a process of its own, killed with SIGKILL.
    const module = join(import.meta.dirname, '..', 'dist', 'src', 'runtime', 'docker.js');
    const spec = warmSpecOf(busyboxSpec(FILE, { command: ['sh', '-c', 'echo the-command-ran'] }));
    const script = `const { DockerRuntime } = await import(${JSON.stringify(module)});
      const i = await new DockerRuntime().warm(${JSON.stringify(spec)});
      console.log(i.containerId); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const containerId = await new Promise<string>((resolve, reject) => {
      child.stdout!.once('data', (b: Buffer) => resolve(b.toString().trim()));
      child.once('exit', (code) => reject(new Error(`the child exited (${code}) before making its instance`)));
    });
    child.kill('SIGKILL');
    const container = docker.getContainer(containerId);
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    expect(StatusCode).toBe(125);
    const log = (await container.logs({ stdout: true, stderr: true })).toString();
    expect(log).not.toContain('the-command-ran');
    await runtime.remove(containerId);
  });

  it('works with network none and a read-only rootfs (the event needs no network)', async () => {
    const spec = busyboxSpec(FILE, {
      command: ['sh', '-c', 'cat > /runlet/output.json; touch /x 2>/dev/null || echo ro'],
      network: 'none',
      readOnly: true,
      payload: '{"n":1}',
    });
    const { result } = await warmRun(spec);
    expect(result).toMatchObject({ outcome: 'succeeded', output: '{"n":1}', logTail: 'ro\n' });
  });

  it('works with the isolation defaults: the shim and the command run as nobody on a read-only root', async () => {
    const script = 'id -u; cat /runlet/payload.json; echo; cat > /runlet/output.json; touch /x 2>/dev/null || echo ro';
    const spec = busyboxSpec(FILE, { command: ['sh', '-c', script], user: DEFAULTS.user, readOnly: DEFAULTS.readOnly, payload: '{"n":2}' });
    const { result } = await warmRun(spec);
    expect(result).toMatchObject({ outcome: 'succeeded', output: '{"n":2}', logTail: '65534\n{"n":2}\nro\n' });
  });
});
