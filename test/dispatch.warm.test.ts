import { describe, expect, it } from 'vitest';
import { LABEL_CLUSTER, LABEL_REUSE, LABEL_TASK, LABEL_WARM } from '../src/runtime/labels.js';
import { manualRequest } from '../src/triggers/manual.js';
import { docker } from './helpers/docker.js';
import { useDaemon, type TestDaemon } from './helpers/daemon.js';
import { until } from './helpers/until.js';

// Warm instances and reuse wired into dispatch, end to end: a real daemon, real containers.

/** Idle warm (or reusable) containers of `task` in the daemon's cluster. */
async function warmContainers(daemon: TestDaemon, task: string, label = LABEL_WARM): Promise<string[]> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL_CLUSTER}=${daemon.identity.clusterId}`, `${LABEL_TASK}=${task}`, label] },
  });
  return list.map((c) => c.Id).sort();
}

/** Warm instances the daemon's pool has said are ready, so far. */
const readyCount = (daemon: TestDaemon, task?: string): number =>
  daemon.logs.lines.filter((l) => l.msg === 'warm instance ready for a run' && (task === undefined || l.task === task)).length;

// Leaves a file in /tmp, then says whether it found one from before, what payload and env it got.
const FRESH = `
const fs = require('fs');
const before = fs.existsSync('/tmp/mark');
fs.writeFileSync('/tmp/mark', 'x');
const payload = JSON.parse(fs.readFileSync('/runlet/payload.json', 'utf8'));
fs.writeFileSync('/runlet/output.json', JSON.stringify({ before, payload, runId: process.env.RUNLET_RUN_ID, greeting: process.env.GREETING }));
`;

describe('warm: 2 (fresh instances)', () => {
  const ctx = useDaemon(`
tasks:
  fresh:
    image: runlet/node:local
    command: [node, -e, ${JSON.stringify(FRESH)}]
    memory: 64m
    env: { GREETING: hello }
    warm: 2
    concurrency: 2
`);

  it('keeps two idle containers, gives each to one run (a second run never sees the first one’s files), and replaces each after use', async () => {
    const { daemon } = ctx;
    await until('2 idle warm containers of fresh', async () => (await warmContainers(daemon, 'fresh')).length === 2, 30_000, 250);
    // Listed once created; ready for a run once their shim waits (the pool says so).
    await until('2 warm instances ready', () => readyCount(daemon) >= 2, 30_000, 100);
    const first = await warmContainers(daemon, 'fresh');

    const runs = [];
    for (const n of [1, 2, 3]) {
      const { runId } = await daemon.submit(manualRequest('fresh', { n }));
      const rec = await daemon.waitForEnd(runId);
      expect(rec.status).toBe('succeeded');
      runs.push(rec);
      const out = JSON.parse(rec.output!);
      expect(out).toEqual({ before: false, payload: { n }, runId, greeting: 'hello' });
      // Each replacement comes in the background; the next run finds two again.
      await until('2 idle warm containers of fresh', async () => (await warmContainers(daemon, 'fresh')).length === 2, 30_000, 250);
      await until('a replacement ready', () => readyCount(daemon) >= 2 + n, 30_000, 100);
    }
    // The first two runs took the instances made at start; every container served one run.
    expect(first).toContain(runs[0]!.containerId);
    const used = runs.map((r) => r.containerId);
    expect(new Set(used).size).toBe(3);
    for (const id of used) expect((await warmContainers(daemon, 'fresh')).includes(id!)).toBe(false);
    // The nodes view carries them (from the heartbeat's admission load).
    await until(
      'the nodes view to show 2 warm instances',
      async () => {
        const res = await fetch(`${daemon.url}/api/nodes`);
        const body = (await res.json()) as { nodes: Array<{ warm?: Record<string, { instances: number }> }> };
        return body.nodes[0]?.warm?.fresh?.instances === 2;
      },
      20_000,
      250,
    );
    // Idle time is reported apart in the metrics.
    const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
    expect(metrics).toMatch(/runlet_warm_idle_seconds_total\{task="fresh"\} [0-9.]+/);
  });

  it('shutdown retires its idle instances', async () => {
    const { daemon } = ctx;
    await until('2 idle warm containers of fresh', async () => (await warmContainers(daemon, 'fresh')).length === 2, 30_000, 250);
    await daemon.stop();
    expect(await warmContainers(daemon, 'fresh')).toEqual([]);
  });
});

describe('warm instances and the memory budget', () => {
  // The node fits 128m: one warm instance of 64m and one run of 64m, not two instances.
  const ctx = useDaemon(`
node: { memory: 128m }
tasks:
  tight:
    image: runlet/node:local
    command: [node, -e, "require('fs').writeFileSync('/runlet/output.json', '1')"]
    memory: 64m
    warm: 2
  other:
    image: runlet/node:local
    command: [node, -e, "require('fs').writeFileSync('/runlet/output.json', '2')"]
    memory: 96m
`);

  it('makes fewer instances rather than exceed the node budget, and a run still fits', async () => {
    const { daemon } = ctx;
    await until('1 idle warm containers of tight', async () => (await warmContainers(daemon, 'tight')).length === 1, 30_000, 250);
    // A few ticks of the pool later, still one.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await warmContainers(daemon, 'tight')).toHaveLength(1);
    const { runId } = await daemon.submit(manualRequest('tight', {}));
    expect((await daemon.waitForEnd(runId)).status).toBe('succeeded');
    await until('1 idle warm containers of tight', async () => (await warmContainers(daemon, 'tight')).length === 1, 30_000, 250);
  });

  it('runs come first: a run that needs the room an idle instance holds is admitted, and the instance is retired', async () => {
    const { daemon } = ctx;
    // The first test's instance and its replacement, ready (an instance still being made is shed once made).
    await until('the replacement ready', () => readyCount(daemon, 'tight') >= 2, 30_000, 100);
    const held = await warmContainers(daemon, 'tight');
    expect(held).toHaveLength(1);
    // 64m warm + 96m run > 128m: the instance goes, the run starts.
    const { runId } = await daemon.submit(manualRequest('other', {}));
    const rec = await daemon.waitForEnd(runId);
    expect(rec.status).toBe('succeeded');
    expect(await warmContainers(daemon, 'tight')).not.toEqual(held);
    // Once the run's room is back, the instance is made again.
    await until('tight warm again', async () => (await warmContainers(daemon, 'tight')).length === 1, 30_000, 250);
  });
});

describe('scale to zero (a function with warm: 0)', () => {
  const ctx = useDaemon(
    `
tasks:
  fn:
    image: runlet/node:local
    command: [node, -e, "require('fs').writeFileSync('/runlet/output.json', JSON.stringify({ ok: true }))"]
    memory: 64m
    warmIdle: 4s
    http:
      routes: ["GET /zero"]
      auth: none
`,
    { fnPort: 0, fnHost: '127.0.0.1' },
  );

  it('starts cold with no container, keeps one instance warm for warmIdle after a request, then none', async () => {
    const { daemon } = ctx;
    expect(await warmContainers(daemon, 'fn')).toEqual([]);
    const first = await fetch(`${daemon.fnUrl}/zero`);
    expect(first.status).toBe(200);
    await until('one warm instance after the request', async () => (await warmContainers(daemon, 'fn')).length === 1, 30_000, 250);
    await until('ready', () => readyCount(daemon) >= 1, 30_000, 100);
    const [instance] = await warmContainers(daemon, 'fn');
    const second = await fetch(`${daemon.fnUrl}/zero`);
    expect(second.status).toBe(200);
    const rec = await daemon.store.get(second.headers.get('x-runlet-run-id')!);
    expect(rec?.containerId).toBe(instance);
    // No request for warmIdle (4 s): no container.
    await until('no warm instance after the idle period', async () => (await warmContainers(daemon, 'fn')).length === 0, 30_000, 250);
  });
});

// A Lambda custom runtime's bootstrap loop, unchanged (as in test/runtime.reuse.test.ts): state
// kept between invocations; `?fail` throws.
const BOOTSTRAP = `
const API = 'http://' + process.env.AWS_LAMBDA_RUNTIME_API + '/2018-06-01/runtime';
let invocations = 0;
async function handler(event) {
  invocations += 1;
  if (event.rawQueryString === 'fail') throw new TypeError('asked to fail');
  return { statusCode: 200, body: JSON.stringify({ invocations, pid: process.pid, host: require('os').hostname(), path: event.rawPath }) };
}
(async () => {
  while (true) {
    const next = await fetch(API + '/invocation/next');
    const id = next.headers.get('Lambda-Runtime-Aws-Request-Id');
    const event = await next.json();
    try {
      await fetch(API + '/invocation/' + id + '/response', { method: 'POST', body: JSON.stringify(await handler(event)) });
    } catch (err) {
      await fetch(API + '/invocation/' + id + '/error', { method: 'POST', headers: { 'Lambda-Runtime-Function-Error-Type': 'Unhandled' },
        body: JSON.stringify({ errorMessage: err.message, errorType: err.name }) });
    }
  }
})();
`;

describe('reuse: true (a Lambda bootstrap behind the functions listener)', () => {
  const ctx = useDaemon(
    `
tasks:
  lambda:
    image: runlet/node:local
    command: [node, -e, ${JSON.stringify(BOOTSTRAP)}]
    memory: 96m
    reuse: true
    concurrency: 1
    http:
      routes: ["GET /hello"]
      auth: none
`,
    { fnPort: 0, fnHost: '127.0.0.1' },
  );

  it('serves requests one after another from one instance, each its own run record; an error recycles the instance', async () => {
    const { daemon } = ctx;
    const call = async (q = '') => {
      const res = await fetch(`${daemon.fnUrl}/hello${q}`);
      return { status: res.status, runId: res.headers.get('x-runlet-run-id')!, body: (await res.json()) as Record<string, unknown> };
    };
    const a = await call();
    const b = await call();
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.body.host).toBe(a.body.host);
    expect(b.body.pid).toBe(a.body.pid);
    expect(b.body.invocations).toBe((a.body.invocations as number) + 1);
    expect(a.runId).not.toBe(b.runId);
    for (const id of [a.runId, b.runId]) {
      const rec = await daemon.store.get(id);
      expect(rec?.status).toBe('succeeded');
      expect(rec?.startedAt).toBeDefined();
    }
    expect(await warmContainers(daemon, 'lambda', LABEL_REUSE)).toHaveLength(1);

    const failed = await call('?fail');
    expect(failed.status).toBe(502);
    const rec = await daemon.store.get(failed.runId);
    expect(rec?.status).toBe('failed');
    expect(rec?.reason).toMatch(/asked to fail/);

    const c = await call();
    expect(c.status).toBe(200);
    expect(c.body.host).not.toBe(a.body.host);
    expect(c.body.invocations).toBe(1);
  });
});
