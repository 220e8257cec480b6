import { describe, expect, it } from 'vitest';
import { manualRequest } from '../src/triggers/manual.js';
import { useDaemon } from './helpers/daemon.js';

// Per-node admission: a pool's concurrency and memory budget, and the node's memory
// budget, hold a run back (queued, not dropped) until another run frees the room.
const CONFIG = `
defaults: { image: runlet/busybox:local, timeout: 30s }
node: { memory: 100m }
pools:
  heavy: { concurrency: 4, memory: 64m }
  single: { concurrency: 1 }
tasks:
  big-a:   { pool: heavy, memory: 48m, command: [sh, -c, "sleep 1.5; echo a"] }
  big-b:   { pool: heavy, memory: 48m, command: [echo, b] }
  solo-a:  { pool: single, memory: 8m, command: [sh, -c, "sleep 1.5; echo a"] }
  solo-b:  { pool: single, memory: 8m, command: [echo, b] }
  node-a:  { memory: 90m, command: [sh, -c, "sleep 1.5; echo a"] }
  node-b:  { memory: 20m, command: [echo, b] }
  fifo:    { pool: single, memory: 8m, concurrency: 1, command: [sh, -c, "echo $RUNLET_PAYLOAD"] }
`;

const ctx = useDaemon(CONFIG);

/** Starts `first`, and once it runs, `second`: returns both records when both ended. */
async function oneAfterAnother(first: string, second: string) {
  const a = await ctx.daemon.submit(manualRequest(first, undefined));
  await ctx.daemon.events.once('run:started', (e) => e.runId === a.runId);
  const b = await ctx.daemon.submit(manualRequest(second, undefined));
  return Promise.all([ctx.daemon.waitForEnd(a.runId), ctx.daemon.waitForEnd(b.runId)]);
}

describe('admission on one node', () => {
  it("a pool's memory budget holds a run back until another finishes", async () => {
    const [a, b] = await oneAfterAnother('big-a', 'big-b');
    expect([a.status, b.status]).toEqual(['succeeded', 'succeeded']);
    // 48m + 48m > 64m: b waited, queued, for a to end.
    const bStarted = b.transitions.find((t) => t.status === 'starting')!.at;
    expect(bStarted).toBeGreaterThanOrEqual(a.transitions.find((t) => t.status === 'succeeded')!.at - 50);
  });

  it("a pool's concurrency holds a run of another task back", async () => {
    const [a, b] = await oneAfterAnother('solo-a', 'solo-b');
    const bStarted = b.transitions.find((t) => t.status === 'starting')!.at;
    expect(bStarted).toBeGreaterThanOrEqual(a.transitions.find((t) => t.status === 'succeeded')!.at - 50);
  });

  it("the node's memory budget holds a run back across pools", async () => {
    const [a, b] = await oneAfterAnother('node-a', 'node-b');
    const bStarted = b.transitions.find((t) => t.status === 'starting')!.at;
    expect(bStarted).toBeGreaterThanOrEqual(a.transitions.find((t) => t.status === 'succeeded')!.at - 50);
  });

  it('a queued run can be cancelled: it never starts; runs of a task start in the order they came', async () => {
    const blocker = await ctx.daemon.submit(manualRequest('solo-a', undefined));
    await ctx.daemon.events.once('run:started', (e) => e.runId === blocker.runId);
    const queued = [];
    for (let i = 0; i < 5; i++) queued.push(await ctx.daemon.submit(manualRequest('fifo', { n: i })));
    const res = await fetch(`${ctx.daemon.url}/api/runs/${queued[2].runId}/cancel`, { method: 'POST' });
    expect(await res.json()).toEqual({ id: queued[2].runId, status: 'cancelled' });
    const runs = await Promise.all(queued.map((q) => ctx.daemon.waitForEnd(q.runId)));
    expect(runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'cancelled', 'succeeded', 'succeeded']);
    expect(runs[2].startedAt).toBeUndefined();
    expect(runs[2].transitions.map((t) => t.status)).toEqual(['queued', 'cancelled']);
    const ran = runs.filter((r) => r.status === 'succeeded');
    const starts = ran.map((r) => r.transitions.find((t) => t.status === 'starting')!.at);
    expect([...starts].sort((x, y) => x - y)).toEqual(starts);
  });

  it('runs that fit start side by side (the rules do not serialise everything)', async () => {
    const a = await ctx.daemon.submit(manualRequest('big-a', undefined));
    await ctx.daemon.events.once('run:started', (e) => e.runId === a.runId);
    const b = await ctx.daemon.submit(manualRequest('solo-b', undefined));
    const [ra, rb] = await Promise.all([ctx.daemon.waitForEnd(a.runId), ctx.daemon.waitForEnd(b.runId)]);
    // b was taken while a still ran: it did not wait for a's end. (Not "b finished first":
    // on a loaded machine b's own container can take longer than a's 1.5 s sleep.)
    const bStarted = rb.transitions.find((t) => t.status === 'starting')!.at;
    expect(bStarted).toBeLessThan(ra.transitions.find((t) => t.status === 'succeeded')!.at);
  });
});
