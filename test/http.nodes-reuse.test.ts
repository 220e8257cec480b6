import { describe, expect, it } from 'vitest';
import type { NodeView } from '../src/ops/nodes.js';
import { useDaemon } from './helpers/daemon.js';
import { until } from './helpers/until.js';

// Reusable instances (`reuse: true`) in the nodes view: each node's heartbeat reports them per
// task, idle and busy, and GET /api/nodes shows them, as it shows warm instances. A real daemon
// with a Lambda bootstrap, read through the real ops API.

// A Lambda custom runtime's bootstrap loop; an event with `holdMs` keeps its invocation (and
// so its instance) busy that long.
const BOOTSTRAP = `
const API = 'http://' + process.env.AWS_LAMBDA_RUNTIME_API + '/2018-06-01/runtime';
(async () => {
  while (true) {
    const next = await fetch(API + '/invocation/next');
    const id = next.headers.get('Lambda-Runtime-Aws-Request-Id');
    const event = await next.json();
    if (event && event.holdMs) await new Promise((r) => setTimeout(r, event.holdMs));
    await fetch(API + '/invocation/' + id + '/response', { method: 'POST', body: JSON.stringify({ held: event && event.holdMs }) });
  }
})();
`;

const TASK = 'reused';

describe('GET /api/nodes with reusable instances', () => {
  // A short lease: the heartbeat (a third of it) reports every 0.5 s.
  const ctx = useDaemon(
    `
tasks:
  ${TASK}:
    image: runlet/node:local
    command: [node, -e, ${JSON.stringify(BOOTSTRAP)}]
    memory: 96m
    timeout: 60s
    reuse: true
    warm: 2
    concurrency: 2
`,
    { node: 'reuse-node', stalledMs: 1500 },
  );

  const node = async (): Promise<NodeView | undefined> => {
    const res = await fetch(`${ctx.daemon.url}/api/nodes`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { nodes: NodeView[] }).nodes.find((n) => n.name === 'reuse-node');
  };
  const reuseOf = async () => (await node())?.reuse[TASK];

  it('shows each task’s reusable instances per node, idle and busy, as runs take and give them back', async () => {
    // warm: 2 fills the pool at start: two instances whose bootstraps wait for work.
    const idle = await until('two idle reusable instances', async () => ((r) => r?.idle === 2 && r)(await reuseOf()), 60_000, 200);
    expect(idle).toEqual({ instances: 2, idle: 2, busy: 0 });
    // Not warm instances (those are fresh, one run each): the warm section has none of the task.
    expect((await node())?.warm[TASK]).toBeUndefined();

    // One run held in its invocation: one busy, one idle; the run is among the node's runs.
    const res = await fetch(`${ctx.daemon.url}/api/tasks/${TASK}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ holdMs: 4000 }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const busy = await until('one busy, one idle', async () => ((n) => n?.reuse[TASK]?.busy === 1 && n)(await node()), 30_000, 100);
    expect(busy.reuse[TASK]).toEqual({ instances: 2, idle: 1, busy: 1 });
    expect(busy.running?.runs.map((r) => r.id)).toEqual([id]);

    // Given back when the run ends: both idle again, and still two (kept for the next run, not replaced).
    const run = await ctx.daemon.waitForEnd(id, 30_000);
    expect(run.status).toBe('succeeded');
    const after = await until('both idle again', async () => ((r) => r?.idle === 2 && r)(await reuseOf()), 30_000, 100);
    expect(after).toEqual({ instances: 2, idle: 2, busy: 0 });
  });
});
