import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { LABEL_REUSE, LABEL_RUN } from '../src/runtime/labels.js';
import { LambdaRuntimeApi } from '../src/runtime/lambda-api.js';
import { ReusableInstance, ReusablePool, type ReusableSpec } from '../src/runtime/reusable.js';
import { busyboxSpec, docker, exists, NODE, removeTestContainers, requireImages } from './helpers/docker.js';
import { hostForContainers } from './helpers/host.js';
import { warmSpecOf } from './helpers/warm.js';

const FILE = 'runtime.reuse';
const MiB = 1024 * 1024;

/**
 * A custom runtime's `bootstrap`, as AWS's docs lay it out ("Building a custom runtime":
 * get the next invocation, call the handler, post the response, or post the error), in node
 * since the image has no curl. Nothing in it knows about runlet. The handler keeps state
 * between invocations (what reuse is for) and reports what it saw.
 */
const BOOTSTRAP = `
const RUNTIME_API = 'http://' + process.env.AWS_LAMBDA_RUNTIME_API + '/2018-06-01/runtime';
let invocations = 0;
async function handler(event, context) {
  invocations += 1;
  if (event.op === 'fail') throw new TypeError('asked to fail');
  if (event.op === 'sleep') await new Promise((r) => setTimeout(r, event.ms));
  if (event.op === 'log') {
    console.log(event.text);
    if (event.ms) await new Promise((r) => setTimeout(r, event.ms));
  }
  return { invocations, pid: process.pid, host: require('os').hostname(), event, context, handler: process.env._HANDLER, root: process.env.LAMBDA_TASK_ROOT };
}
(async () => {
  while (true) {
    const next = await fetch(RUNTIME_API + '/invocation/next');
    const requestId = next.headers.get('Lambda-Runtime-Aws-Request-Id');
    const context = {
      requestId,
      deadlineMs: Number(next.headers.get('Lambda-Runtime-Deadline-Ms')),
      arn: next.headers.get('Lambda-Runtime-Invoked-Function-Arn'),
      traceId: next.headers.get('Lambda-Runtime-Trace-Id'),
    };
    const event = await next.json();
    try {
      const result = await handler(event, context);
      await fetch(RUNTIME_API + '/invocation/' + requestId + '/response', { method: 'POST', body: JSON.stringify(result) });
    } catch (err) {
      await fetch(RUNTIME_API + '/invocation/' + requestId + '/error', {
        method: 'POST',
        headers: { 'Lambda-Runtime-Function-Error-Type': 'Unhandled' },
        body: JSON.stringify({ errorMessage: err.message, errorType: err.name }),
      });
    }
  }
})();
`;

describe('reusable instances through the Lambda Runtime API', () => {
  const runtime = new DockerRuntime({ docker });
  let api: LambdaRuntimeApi;
  const spec = (over: Partial<ReusableSpec> = {}): ReusableSpec => ({
    ...warmSpecOf(busyboxSpec(FILE, { image: NODE, command: ['node', '-e', BOOTSTRAP], memoryBytes: 128 * MiB, killGraceMs: 500 })),
    task: 'reuse-test',
    handler: 'index.handler',
    taskRoot: '/app',
    ...over,
  });
  const start = (over?: Partial<ReusableSpec>) => ReusableInstance.start(runtime, api, spec(over));
  const json = (body?: Buffer) => JSON.parse(body!.toString('utf8'));

  beforeAll(async () => {
    await requireImages(NODE);
    api = await LambdaRuntimeApi.listen(await hostForContainers());
  });
  afterAll(async () => {
    await api?.close();
    await removeTestContainers(FILE);
  });

  it('an unchanged bootstrap serves 3 invocations one after another in one container, with Lambda headers and env', async () => {
    const instance = await start();
    try {
      await instance.ready;
      const results = [];
      for (let i = 1; i <= 3; i++)
        results.push(await instance.invoke(JSON.stringify({ op: 'echo', i }), { timeoutMs: 10_000, requestId: `req-${i}` }));
      const bodies = results.map((r) => json(r.body));
      expect(results.map((r) => r.outcome)).toEqual(['succeeded', 'succeeded', 'succeeded']);
      // One process kept its state across the three.
      expect(bodies.map((b) => b.invocations)).toEqual([1, 2, 3]);
      expect(new Set(bodies.map((b) => b.pid)).size).toBe(1);
      expect(bodies[2]).toMatchObject({ event: { op: 'echo', i: 3 }, handler: 'index.handler', root: '/app' });
      expect(bodies[2].context).toMatchObject({ requestId: 'req-3', arn: 'arn:aws:lambda:runlet:000000000000:function:reuse-test' });
      expect(bodies[2].context.traceId).toMatch(/^Root=1-/);
      expect(bodies[2].context.deadlineMs).toBe(results[2]!.startedAt! + 10_000);
      expect(instance.invocations).toBe(3);
      // Labelled as a reusable instance, never as a run.
      const [listed] = await runtime.listWarm({ [LABEL_REUSE]: instance.instanceId });
      expect(listed).toMatchObject({ kind: 'reuse', running: true, containerId: instance.containerId });
      expect(listed!.labels[LABEL_RUN]).toBeUndefined();
    } finally {
      await instance.retire();
    }
    expect(await exists(instance.containerId)).toBe(false);
  });

  it('never two at once: a busy instance refuses a second invocation, and a pool of one serves concurrent callers in turn', async () => {
    const pool = new ReusablePool(() => start(), 1);
    try {
      await pool.fill();
      const [first] = pool.members;
      const slow = first!.invoke(JSON.stringify({ op: 'sleep', ms: 300 }), { timeoutMs: 10_000 });
      await expect(first!.invoke('{}', { timeoutMs: 10_000 })).rejects.toThrow(/busy/);
      await slow;
      const results = await Promise.all(
        [1, 2, 3].map((i) => pool.invoke(JSON.stringify({ op: 'sleep', ms: 100, i }), { timeoutMs: 10_000 })),
      );
      expect(results.map((r) => json(r.body).invocations).sort()).toEqual([2, 3, 4]);
      // In turn: each one started after the one before had ended.
      const spans = results.map((r) => [r.startedAt!, r.finishedAt] as const).sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    } finally {
      await pool.close();
    }
  });

  it('an error response fails that invocation and recycles the instance; the pool serves the next one from a new container', async () => {
    const pool = new ReusablePool(() => start(), 1);
    try {
      await pool.fill();
      const [first] = pool.members;
      const ok = await pool.invoke('{"op":"echo"}', { timeoutMs: 10_000 });
      const failed = await pool.invoke('{"op":"fail"}', { timeoutMs: 10_000 });
      expect(failed).toMatchObject({ outcome: 'failed', errorType: 'Unhandled' });
      expect(json(failed.body)).toEqual({ errorMessage: 'asked to fail', errorType: 'TypeError' });
      expect(first!.spent).toMatch(/error/);
      await first!.ended;
      expect(await exists(first!.containerId)).toBe(false);
      const after = await pool.invoke('{"op":"echo"}', { timeoutMs: 10_000 });
      expect(json(after.body).invocations).toBe(1);
      expect(json(after.body).host).not.toBe(json(ok.body).host);
      expect(pool.members.map((m) => m.containerId)).not.toContain(first!.containerId);
      expect(json(ok.body).invocations).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('an invocation past its deadline is timed_out and its instance killed and removed', async () => {
    const instance = await start();
    await instance.ready;
    const began = Date.now();
    const late = await instance.invoke(JSON.stringify({ op: 'sleep', ms: 60_000 }), { timeoutMs: 1_000 });
    expect(late.outcome).toBe('timed_out');
    expect(late.finishedAt - late.startedAt!).toBeGreaterThanOrEqual(1_000);
    expect(Date.now() - began).toBeLessThan(15_000);
    await instance.ended;
    expect(await exists(instance.containerId)).toBe(false);
  });

  it('after maxInvocations the instance is recycled; an invocation keeps the output written while it ran', async () => {
    const pool = new ReusablePool(() => start({ maxInvocations: 2 }), 1);
    try {
      // The log is best effort at the edge (the engine streams it a few ms behind, so a line
      // written just before the response can land in the next invocation): the line is
      // written well inside the invocation, as a handler's log usually is.
      const a = await pool.invoke(JSON.stringify({ op: 'log', text: 'line-from-a', ms: 500 }), { timeoutMs: 10_000 });
      const b = await pool.invoke('{"op":"echo"}', { timeoutMs: 10_000 });
      const c = await pool.invoke('{"op":"echo"}', { timeoutMs: 10_000 });
      expect([a, b, c].map((r) => json(r.body).invocations)).toEqual([1, 2, 1]);
      // The third ran in a new container (the hostname is the container's id).
      expect(json(a.body).host).toBe(json(b.body).host);
      expect(json(c.body).host).not.toBe(json(b.body).host);
      expect([a.sequence, b.sequence, c.sequence]).toEqual([1, 2, 1]);
      expect(a.log).toContain('line-from-a');
    } finally {
      await pool.close();
    }
  });

  it('the endpoint answers only under an instance token: another path gets 404', async () => {
    const instance = await start();
    try {
      await instance.ready;
      const base = `http://${api.host}:${api.port}`;
      expect((await fetch(`${base}/not-a-token/2018-06-01/runtime/invocation/next`)).status).toBe(404);
      expect((await fetch(`${base}/2018-06-01/runtime/invocation/next`)).status).toBe(404);
    } finally {
      await instance.retire();
    }
  });

  it('an init error spends the instance; network none is refused', async () => {
    const failing = `fetch('http://' + process.env.AWS_LAMBDA_RUNTIME_API + '/2018-06-01/runtime/init/error', { method: 'POST', body: '{"errorMessage":"no config"}' }).then(() => setTimeout(() => {}, 60000));`;
    const instance = await start({ command: ['node', '-e', failing] });
    await expect(instance.ready).rejects.toThrow(/no config/);
    expect(instance.spent).toBe('init error');
    await instance.ended;
    await expect(start({ network: 'none' })).rejects.toThrow(/network/);
  });
});
