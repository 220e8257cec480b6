import { afterAll, describe, expect, it } from 'vitest';
import type { RunSpec, Runtime } from '../../src/runtime/types.js';

/** What the suite needs from the runtime under test, so it can check any implementation. */
export interface ConformanceFixture {
  /** A spec that runs `sh -c <script>` (POSIX shell with sleep and echo) in this runtime. */
  shellSpec(script: string, overrides?: Partial<RunSpec>): RunSpec;
  /** An image (or equivalent) this runtime does not have. */
  readonly missingImage: string;
  /** Labels every shellSpec carries; list() is scoped by them. */
  readonly labels: Readonly<Record<string, string>>;
  /** Removes whatever the suite created, even after a failure. */
  cleanup(): Promise<void>;
}

/**
 * The Runtime contract (src/runtime/types.ts) as tests: outcomes, log tail, payload in and
 * output out, a read-only rootfs, timeout and cancel, failure to start, and the re-attach path
 * a restarted daemon takes (list → adopt → wait). Runtime-specific detail (reason wording,
 * hardening, OOM, how /runlet is made) is tested per runtime.
 */
export function runtimeConformance(name: string, makeRuntime: () => Runtime, fixture: ConformanceFixture): void {
  describe(`${name} conforms to Runtime`, () => {
    const runtime = makeRuntime();
    afterAll(() => fixture.cleanup());

    async function run(spec: RunSpec, opts?: Parameters<Runtime['wait']>[1]) {
      const prepared = await runtime.prepare(spec);
      try {
        await runtime.start(prepared);
        return await runtime.wait(prepared, opts);
      } finally {
        await runtime.remove(prepared.containerId);
      }
    }

    it('a zero exit succeeds, with stdout and stderr in the log tail and engine times', async () => {
      const result = await run(fixture.shellSpec('echo to-out; echo to-err >&2'));
      expect(result.outcome).toBe('succeeded');
      expect(result.exitCode).toBe(0);
      expect(result.logTail).toContain('to-out\n');
      expect(result.logTail).toContain('to-err\n');
      expect(result.startedAt).toBeTypeOf('number');
      expect(result.finishedAt!).toBeGreaterThanOrEqual(result.startedAt!);
    });

    it('a non-zero exit fails with its exit code', async () => {
      const result = await run(fixture.shellSpec('exit 7'));
      expect(result).toMatchObject({ outcome: 'failed', exitCode: 7 });
      expect(result.reason).toContain('7');
    });

    it('the env reaches the program', async () => {
      const result = await run(fixture.shellSpec('echo "value=$RUNLET_CONFORMANCE"', { env: { RUNLET_CONFORMANCE: 'a b=c' } }));
      expect(result.logTail).toContain('value=a b=c');
    });

    it('a payload reaches the program on stdin (then EOF) and in the file $RUNLET_PAYLOAD_FILE names', async () => {
      const payload = '{\n  "text": "ünïcödé ✓",\n  "n": 1\n}\n';
      const onStdin = await run(fixture.shellSpec('cat', { payload, timeoutMs: 10_000 }));
      expect(onStdin).toMatchObject({ outcome: 'succeeded', logTail: payload });
      const inFile = await run(
        fixture.shellSpec('[ "$RUNLET_PAYLOAD_FILE" = /runlet/payload.json ] && cat "$RUNLET_PAYLOAD_FILE"', { payload }),
      );
      expect(inFile).toMatchObject({ outcome: 'succeeded', logTail: payload });
    });

    it('/runlet/output.json comes back as output; without it there is none', async () => {
      const written = await run(fixture.shellSpec('echo \'{"answer": 42}\' > /runlet/output.json'));
      expect(written).toMatchObject({ outcome: 'succeeded', output: '{"answer": 42}\n' });
      expect(written.outputError).toBeUndefined();
      const none = await run(fixture.shellSpec('true'));
      expect(none.output).toBeUndefined();
      expect(none.outputError).toBeUndefined();
    });

    it('with readOnly the root filesystem refuses writes, while /tmp and /runlet take them', async () => {
      const script =
        'touch /not-writable 2>/dev/null && echo rootfs-writable; echo ok > /tmp/t && cat /tmp/t; cat "$RUNLET_PAYLOAD_FILE" > /runlet/output.json';
      const result = await run(fixture.shellSpec(script, { readOnly: true, payload: '{"a":1}' }));
      expect(result).toMatchObject({ outcome: 'succeeded', logTail: 'ok\n', output: '{"a":1}' });
    });

    it('a run past its timeout is timed_out', async () => {
      const result = await run(fixture.shellSpec('sleep 30', { timeoutMs: 1_000, killGraceMs: 1_000 }));
      expect(result.outcome).toBe('timed_out');
      expect(result.reason).toMatch(/timeout/);
    });

    it('aborting the cancel signal mid-run yields cancelled', async () => {
      const cancel = new AbortController();
      const result = await run(fixture.shellSpec('echo started; sleep 30', { killGraceMs: 1_000 }), {
        cancel: cancel.signal,
        onOutput: (tail) => tail.includes('started') && cancel.abort(),
      });
      expect(result.outcome).toBe('cancelled');
      expect(result.logTail).toContain('started');
    });

    it('a signal aborted before wait cancels at once', async () => {
      const cancel = new AbortController();
      cancel.abort();
      const started = Date.now();
      const result = await run(fixture.shellSpec('sleep 30', { killGraceMs: 1_000 }), { cancel: cancel.signal });
      expect(result.outcome).toBe('cancelled');
      expect(Date.now() - started).toBeLessThan(15_000);
    });

    it('onOutput sees output while the run is still going', async () => {
      const seen: string[] = [];
      const result = await run(fixture.shellSpec('echo first; sleep 2; echo second'), { onOutput: (tail) => seen.push(tail) });
      expect(result.outcome).toBe('succeeded');
      expect(seen.some((tail) => tail.includes('first') && !tail.includes('second'))).toBe(true);
    });

    it('onLog gets every byte live, once, at its offset; onOutput and logBytes say where the tail ends', async () => {
      const chunks: { offset: number; text: string; at: number }[] = [];
      const ends: number[] = [];
      const result = await run(fixture.shellSpec('echo first; sleep 1; echo second'), {
        onLog: (chunk, offset) => chunks.push({ offset, text: chunk.toString(), at: Date.now() }),
        onOutput: (_tail, end) => ends.push(end),
      });
      let next = 0;
      for (const c of chunks) {
        expect(c.offset).toBe(next);
        next += Buffer.byteLength(c.text);
      }
      expect(chunks.map((c) => c.text).join('')).toBe('first\nsecond\n');
      expect(chunks.find((c) => c.text.includes('second'))!.at - chunks[0]!.at).toBeGreaterThan(500);
      expect(result.logBytes).toBe(next);
      expect(ends.at(-1)).toBeLessThanOrEqual(next);
    });

    it('an image that is not there fails to prepare with a reason naming it', async () => {
      const err = await runtime.prepare(fixture.shellSpec('true', { image: fixture.missingImage })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as { reason?: string }).reason).toContain(fixture.missingImage);
    });

    it('remove is idempotent and the removed container is no longer listed', async () => {
      const spec = fixture.shellSpec('true');
      const prepared = await runtime.prepare(spec);
      expect((await runtime.list({ ...fixture.labels, 'runlet.run': spec.runId })).map((c) => c.containerId)).toEqual([
        prepared.containerId,
      ]);
      await runtime.remove(prepared.containerId);
      await runtime.remove(prepared.containerId);
      expect(await runtime.list({ ...fixture.labels, 'runlet.run': spec.runId })).toEqual([]);
    });

    it('a container removed while waited on ends as failed, without throwing', async () => {
      const prepared = await runtime.prepare(fixture.shellSpec('sleep 30'));
      await runtime.start(prepared);
      const waiting = runtime.wait(prepared);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await runtime.remove(prepared.containerId);
      const result = await waiting;
      expect(result.outcome).toBe('failed');
      expect(result.reason).toBeTruthy();
    });

    it('a new runtime instance can list, adopt and wait on a running container, keeping its deadline', async () => {
      const spec = fixture.shellSpec('echo before-adoption; sleep 30', { killGraceMs: 1_000 });
      const prepared = await runtime.prepare(spec);
      try {
        await runtime.start(prepared);
        const successor = makeRuntime();
        const [found] = await successor.list({ ...fixture.labels, 'runlet.run': spec.runId });
        expect(found).toMatchObject({ containerId: prepared.containerId, runId: spec.runId, task: spec.task, running: true });
        expect(found!.startedAt).toBeTypeOf('number');
        expect(found!.labels).toMatchObject(fixture.labels);
        const result = await successor.wait(successor.adopt(found!, spec), { deadline: Date.now() + 1_000 });
        expect(result.outcome).toBe('timed_out');
        expect(result.logTail).toContain('before-adoption');
      } finally {
        await runtime.remove(prepared.containerId);
      }
    });

    it('kill stops a running container (SIGKILL after the grace when SIGTERM is ignored), answers "stopped" again, and "gone" once removed', async () => {
      const spec = fixture.shellSpec('trap "" TERM; echo ready; while :; do sleep 1; done', { timeoutMs: 60_000 });
      const prepared = await runtime.prepare(spec);
      try {
        await runtime.start(prepared);
        let ready!: () => void;
        const trapped = new Promise<void>((resolve) => (ready = resolve));
        const waiting = runtime.wait(prepared, { onOutput: (tail) => tail.includes('ready') && ready() });
        await trapped;
        expect(await runtime.kill(prepared.containerId, { reason: 'conformance', graceMs: 1_000 })).toBe('stopped');
        const [after] = await runtime.list({ ...fixture.labels, 'runlet.run': spec.runId });
        expect(after?.running).toBe(false);
        // Not this wait's own stop: the end reads as the program's (killed), not as a timeout or cancel.
        expect(await waiting).toMatchObject({ outcome: 'failed', exitCode: 137 });
        expect(await runtime.kill(prepared.containerId, { reason: 'conformance, again', graceMs: 1_000 })).toBe('stopped');
      } finally {
        await runtime.remove(prepared.containerId);
      }
      expect(await runtime.kill(prepared.containerId, { reason: 'conformance, removed', graceMs: 1_000 })).toBe('gone');
    });

    it('adopting a container that already ended returns its outcome and output at once', async () => {
      const spec = fixture.shellSpec('echo finished-earlier; exit 5');
      const prepared = await runtime.prepare(spec);
      try {
        await runtime.start(prepared);
        await runtime.wait(prepared);
        const successor = makeRuntime();
        const [found] = await successor.list({ ...fixture.labels, 'runlet.run': spec.runId });
        expect(found?.running).toBe(false);
        const result = await successor.wait(successor.adopt(found!, spec), { deadline: Date.now() - 1_000 });
        expect(result).toMatchObject({ outcome: 'failed', exitCode: 5 });
        expect(result.logTail).toContain('finished-earlier');
      } finally {
        await runtime.remove(prepared.containerId);
      }
    });
  });
}
