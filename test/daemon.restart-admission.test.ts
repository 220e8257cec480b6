import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { containersOfRun } from './helpers/daemon.js';
import { docker } from './helpers/docker.js';
import { spawnDaemon, useDaemonProcess } from './helpers/process.js';
import { until } from './helpers/until.js';

// A container adopted after a restart is still a run on this node: it must take its room in
// the node's memory budget, or the new daemon starts runs beside it past the budget.
// 64m + 64m > 100m, and the default pool (8 runs) leaves memory as the only limit. The
// adopted run lasts until the test stops it (SIGTERM, which it answers with exit 0), so a
// slow start-up of the second daemon cannot let it end unseen.
const CONFIG = join(mkdtempSync(join(tmpdir(), 'runlet-restart-admission-')), 'runlet.yaml');
writeFileSync(
  CONFIG,
  `defaults: { image: runlet/busybox:local, timeout: 60s }
node: { memory: 100m }
tasks:
  adopted: { memory: 64m, command: [sh, -c, "trap 'echo adopted run done; exit 0' TERM; while true; do sleep 0.2; done"] }
  beside:  { memory: 64m, command: [echo, beside] }
`,
);

const ctx = useDaemonProcess(CONFIG, 'admit-node');
const api = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${ctx.env.RUNLET_PORT}/api${path}`, init);

interface Run {
  status: string;
  containerId: string | null;
  logTail: string;
  transitions: Array<{ status: string; at: string }>;
}

const run = async (id: string): Promise<Run> => (await (await api(`/runs/${id}`)).json()) as Run;
const ended = (id: string) =>
  until(`run ${id} to end`, async () => ((r) => !['queued', 'starting', 'running'].includes(r.status) && r)(await run(id)), 30_000);
const at = (r: Run, status: string): number => Date.parse(r.transitions.find((t) => t.status === status)!.at);

describe('a container adopted after a restart', () => {
  it("holds its memory in the node's budget until it ends: a run that would not fit beside it waits", async () => {
    const { id: adoptedId } = (await (await api('/tasks/adopted/runs', { method: 'POST' })).json()) as { id: string };
    const { containerId } = await until('the run to be running', async () => ((r) => r.status === 'running' && r)(await run(adoptedId)));
    ctx.daemon.child.kill('SIGKILL');
    await new Promise((r) => ctx.daemon.child.once('exit', r));
    expect(await containersOfRun(adoptedId)).toBe(1);

    // The next daemon on the node (stopped by useDaemonProcess after the file).
    ctx.daemon = spawnDaemon(CONFIG, ctx.env);
    await ctx.daemon.ready;
    expect(ctx.daemon.output()).toContain('adopting a running container');
    const { id: besideId } = (await (await api('/tasks/beside/runs', { method: 'POST' })).json()) as { id: string };

    // Until the second run either starts or /api/status says it waits for memory: what it
    // says counts the adopted run's 64 MiB.
    const waiting = await until('the second run to start or to wait for memory in /api/status', async () => {
      if ((await run(besideId)).status !== 'queued') return 'started beside the adopted run';
      const status = (await (await api('/status')).json()) as { queued: Array<{ id: string; waitReason: string }> };
      const entry = status.queued.find((q) => q.id === besideId);
      return entry?.waitReason.includes('memory budget') && entry.waitReason;
    });
    await docker.getContainer(containerId!).kill({ signal: 'SIGTERM' });

    const [adopted, beside] = [await ended(adoptedId), await ended(besideId)];
    expect([adopted.status, beside.status]).toEqual(['succeeded', 'succeeded']);
    expect(adopted.logTail).toContain('adopted run done');
    expect(at(beside, 'starting')).toBeGreaterThanOrEqual(at(adopted, 'succeeded'));
    expect(waiting).toContain('has 36 MiB of its 100 MiB memory budget free; the run needs 64 MiB');
  });
});
