import { Redis } from 'ioredis';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../src/runs/store.js';
import type { RunRecord } from '../src/runs/types.js';
import { runCli, useDaemonProcess } from './helpers/process.js';
import { until } from './helpers/until.js';

// One daemon, a real process of the built CLI, whose config file is rewritten between the
// steps and reloaded by SIGHUP or `runlet reload`. The schedules are per second, so a step
// sees several ticks of the new config without waiting long; which config fired a tick is
// read from its tick time (even or odd seconds).
const dir = mkdtempSync(join(tmpdir(), 'runlet-reload-'));
const file = join(dir, 'runlet.yaml');

const config = (beat: string, more = '') => `defaults: { image: runlet/busybox:local, memory: 16m, timeout: 60s }
tasks:
  beat:
    schedule: "${beat}"
    overlap: skip
    command: ["true"]
${more}`;
const EVEN = config('*/2 * * * * *');
const ODD = config('1-59/2 * * * * *');
// Added and then removed: a run in flight (sleep) when its removal is reloaded.
const WITH_SLOW = config(
  '1-59/2 * * * * *',
  `    memory: 24m
  slow:
    schedule: "* * * * * *"
    overlap: skip
    command: [sh, -c, "sleep 10; echo slept"]
    webhook: { auth: none }
`,
);
const BAD = `defaults: { image: runlet/busybox:local, memory: 16m, timeout: 60s }
tasks:
  beat:
    shedule: "*/2 * * * * *"
    command: ["true"]
`;

writeFileSync(file, EVEN);
const ctx = useDaemonProcess(file, 'reload-node');
let client: Redis;
let store: RunStore;
beforeAll(() => {
  client = new Redis({ path: ctx.redis.path });
  store = new RunStore(client);
});
afterAll(() => client?.disconnect());

const runsOf = (task: string): Promise<RunRecord[]> => store.list({ task, limit: 1000 });
const secondOf = (r: RunRecord) => Math.floor((r.scheduledAt ?? 0) / 1000) % 2;
/** The daemon's log lines (JSON) with this message, in order. */
const logged = (msg: string) =>
  ctx.daemon
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; time: number; [k: string]: unknown })
    .filter((l) => l.msg.startsWith(msg));
/** Waits for the n-th "config reloaded" line and returns its time. */
const reloaded = (n: number) => until(`reload #${n} to be logged`, () => logged('config reloaded')[n - 1]?.time, 30_000);

describe('config reload of a running daemon', () => {
  it('SIGHUP: a changed per-second schedule fires on its new ticks, and the old ones stop', async () => {
    await until('ticks of the first schedule', async () => (await runsOf('beat')).filter((r) => secondOf(r) === 0).length >= 2, 30_000);
    writeFileSync(file, ODD);
    ctx.daemon.child.kill('SIGHUP');
    const at = await reloaded(1);
    const after = await until(
      'two ticks of the new schedule',
      async () => {
        const later = (await runsOf('beat')).filter((r) => (r.scheduledAt ?? 0) > at);
        return later.length >= 3 && later;
      },
      30_000,
    );
    expect(after.map(secondOf)).toEqual(after.map(() => 1));
    expect(ctx.daemon.child.exitCode).toBeNull();
  });

  it('runlet reload: an added task starts firing and running, changed limits apply to new runs, a new webhook is reported as needing a restart', async () => {
    writeFileSync(file, WITH_SLOW);
    const { code, stdout, stderr } = await runCli(['reload'], ctx.env);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('reloaded runlet.yaml: 1 task added (slow), 1 changed (beat)');
    expect(stdout).toContain('needs a restart');
    expect(stdout).toContain('tasks.slow.webhook: POST /hooks/slow has no route until a restart');
    const at = await reloaded(2);

    // The added task's triggers and worker: its runs start on this node.
    const slow = await until(
      'a run of the added task running',
      async () => (await runsOf('slow')).find((r) => r.status === 'running'),
      30_000,
    );
    expect(slow.node).toBe('reload-node');
    // The changed memory limit: runs claimed after the reload have it.
    const beat = await until(
      'a run of the changed task claimed after the reload',
      async () => (await runsOf('beat')).find((r) => r.status === 'succeeded' && (r.scheduledAt ?? 0) > at),
      30_000,
    );
    expect(beat.memoryBytes).toBe(24 * 1024 * 1024);
    // The webhook waits for a restart, and says so.
    const res = await fetch(`http://127.0.0.1:${ctx.env.RUNLET_PORT}/hooks/slow`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/restart/);
  });

  it('a removed task stops firing and taking runs, and its run in flight finishes succeeded', async () => {
    // A run that has just started, so that it is still running when the reload is done.
    const seen = new Set((await runsOf('slow')).map((r) => r.id));
    const inFlight = await until(
      'a new run of slow running',
      async () => (await runsOf('slow')).find((r) => r.status === 'running' && !seen.has(r.id)),
      30_000,
    );
    // Waits behind the run in flight (concurrency 1) when the task is removed.
    const manual = await fetch(`http://127.0.0.1:${ctx.env.RUNLET_PORT}/api/tasks/slow/runs`, { method: 'POST' });
    const waiting = ((await manual.json()) as { id: string }).id;
    writeFileSync(file, ODD);
    // SIGHUP, not the CLI: a node process starting on a loaded machine may take longer than the run has left.
    ctx.daemon.child.kill('SIGHUP');
    await reloaded(3);
    expect(logged('config reloaded')[2]).toMatchObject({ removed: ['slow'] });
    expect((await store.get(inFlight.id))?.status).toBe('running');
    const count = (await runsOf('slow')).length;

    const ended = await until(
      'the run in flight to end',
      async () => {
        const r = await store.get(inFlight.id, { withLogs: true });
        return r && ['succeeded', 'failed', 'lost', 'timed_out', 'cancelled'].includes(r.status) && r;
      },
      30_000,
    );
    expect(ended.status).toBe('succeeded');
    expect(ended.logTail).toContain('slept');
    // Well past a tick of its per-second schedule (and the end of its run): nothing new.
    await until(
      'two more ticks of beat',
      async () => (await runsOf('beat')).filter((r) => (r.createdAt ?? 0) > ended.finishedAt!).length >= 2,
      30_000,
    );
    expect(await runsOf('slow')).toHaveLength(count);
    // Not taken by this node's worker, and not failed: a daemon whose config has the task may run it.
    expect((await store.get(waiting))?.status).toBe('queued');
  });

  it('an invalid file is refused with its errors (runlet reload exits 1; SIGHUP logs them) and the old config keeps firing', async () => {
    writeFileSync(file, BAD);
    const line = BAD.split('\n').findIndex((l) => l.includes('shedule')) + 1;
    const where = `runlet.yaml:${line}:5 tasks.beat.shedule: unknown key "shedule" (did you mean "schedule"?)`;

    const { code, stderr } = await runCli(['reload'], ctx.env);
    expect(code).toBe(1);
    expect(stderr).toContain(where);
    expect(stderr).toContain('the daemon goes on with the config it had');
    const refused = await until('the refusal to be logged', () => logged('config reload refused')[0]);
    expect(refused.errors).toEqual([where]);

    ctx.daemon.child.kill('SIGHUP');
    await until('the second refusal to be logged', () => logged('config reload refused')[1]);
    const at = logged('config reload refused')[1]!.time;
    // Still the last good config: ticks go on, on odd seconds.
    const later = await until(
      'ticks after the refusals',
      async () => {
        const runs = (await runsOf('beat')).filter((r) => (r.scheduledAt ?? 0) > at);
        return runs.length >= 2 && runs;
      },
      30_000,
    );
    expect(later.map(secondOf)).toEqual(later.map(() => 1));
    expect(ctx.daemon.child.exitCode).toBeNull();
  });
});
