import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { keys } from '../src/runs/keys.js';
import { useDaemon } from './helpers/daemon.js';

// A run's payload arrives three ways (env, file, stdin); /runlet/output.json comes back in
// the record; isolation options hold through the ctx.daemon.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 32m, timeout: 20s }
tasks:
  echo-payload:
    command:
      - sh
      - -c
      - |
        echo "env=$RUNLET_PAYLOAD"
        echo "file=$(cat "$RUNLET_PAYLOAD_FILE")"
        echo "stdin=$(cat)"
        echo "attempt=$RUNLET_ATTEMPT"
        printf '{"seen": %s}' "$(cat "$RUNLET_PAYLOAD_FILE")" > /runlet/output.json
  small-only: { maxPayload: 4k, command: [echo, never] }
  big-payload:
    command: [sh, -c, 'echo "env-set=$\${RUNLET_PAYLOAD:+yes}"; echo "file-bytes=$(wc -c < "$RUNLET_PAYLOAD_FILE")"; echo "stdin-bytes=$(wc -c)"']
  locked-down:
    readOnly: true
    user: "65534:65534"
    network: none
    command:
      - sh
      - -c
      - |
        touch /x 2>/dev/null && echo "rootfs writable" || echo "rootfs read-only"
        echo "uid=$(id -u)"
        grep -q eth0 /proc/net/dev && echo "has eth0" || echo "no eth0"
        echo '{"ok": true}' > /runlet/output.json
`;

const ctx = useDaemon(CONFIG);

async function runWith(task: string, payload?: unknown) {
  const res = await fetch(`${ctx.daemon.url}/api/tasks/${task}/runs`, {
    method: 'POST',
    ...(payload !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) }),
  });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  await ctx.daemon.waitForEnd(id);
  return (await (await fetch(`${ctx.daemon.url}/api/runs/${id}`)).json()) as {
    status: string;
    logTail: string;
    payload: unknown;
    output: unknown;
    outputError: string | null;
  };
}

describe('payload and output', () => {
  it('the payload arrives by env, file and stdin; output.json comes back in the record', async () => {
    const payload = { bid: 42, bidder: 'Zoë' };
    const text = JSON.stringify(payload);
    const r = await runWith('echo-payload', payload);
    expect(r.status).toBe('succeeded');
    expect(r.logTail).toContain(`env=${text}\n`);
    expect(r.logTail).toContain(`file=${text}\n`);
    expect(r.logTail).toContain(`stdin=${text}\n`);
    expect(r.logTail).toContain('attempt=1\n');
    expect(r.output).toEqual({ seen: payload });
    expect(r.outputError).toBeNull();
  });

  it('a large payload comes by file and stdin only (an env var that big would break exec)', async () => {
    const payload = { blob: 'x'.repeat(200 * 1024) };
    const bytes = Buffer.byteLength(JSON.stringify(payload));
    const r = await runWith('big-payload', payload);
    expect(r.status).toBe('succeeded');
    expect(r.logTail).toContain('env-set=\n');
    expect(r.logTail).toContain(`file-bytes=${bytes}\n`);
    expect(r.logTail).toContain(`stdin-bytes=${bytes}`);
    expect(r.payload).toEqual(payload);
  });

  it('listings and the status page do not read payloads: a large one is read by its run alone', async () => {
    // Runs with 1 MiB payloads, as many webhooks with big bodies leave; skipped, of a task no
    // longer configured, so no container runs. Bytes Redis sends are counted around each read.
    const MiB = 1024 * 1024;
    const n = 12;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const payload = { blob: String(i).padEnd(MiB, 'x') };
      const { runId } = await ctx.daemon.store.create(
        { task: 'gone-task', trigger: 'manual', dedupeKey: `gone-task:big:${i}`, payload },
        { status: 'skipped', reason: 'test' },
      );
      ids.push(runId);
    }
    const counter = new Redis({ path: ctx.redis.path });
    try {
      const sent = async () => Number(/total_net_output_bytes:(\d+)/.exec(await counter.info('stats'))![1]);
      const bytesFor = async (path: string) => {
        const before = await sent();
        const res = await fetch(`${ctx.daemon.url}${path}`);
        expect(res.status).toBe(200);
        const body = (await res.json()) as Record<string, unknown>;
        return { bytes: (await sent()) - before, body };
      };
      // /api/status scans recent runs for queued ones (the dashboard asks every 5 s): before
      // payloads had their own key it read all n MiB here; now a few KiB (the daemon's own
      // heartbeats and polls are counted too, hence the margin).
      const status = await bytesFor('/api/status');
      expect(status.bytes).toBeLessThan(MiB);
      const listing = await bytesFor('/api/runs?task=gone-task&limit=50');
      expect((listing.body.runs as unknown[]).length).toBe(n);
      expect(listing.bytes).toBeLessThan(MiB);
      // The run's own page still has its payload, and reads it alone.
      const one = await bytesFor(`/api/runs/${ids[3]}`);
      expect((one.body.payload as { blob: string }).blob).toBe('3'.padEnd(MiB, 'x'));
      expect(one.bytes).toBeGreaterThan(MiB);
      expect(one.bytes).toBeLessThan(2 * MiB);
      // The payload is a part of the run: retention deletes it with the rest.
      expect(await counter.exists(keys.payload(ids[0]!))).toBe(1);
      expect(await ctx.daemon.store.trim('gone-task', 0)).toBe(n);
      expect(await counter.exists(...ids.map((id) => keys.payload(id)))).toBe(0);
    } finally {
      counter.disconnect();
    }
  });

  it("a payload over the task's maxPayload is refused with 413 and nothing is queued", async () => {
    const before = (await ctx.daemon.store.list({ task: 'small-only' })).length;
    const res = await fetch(`${ctx.daemon.url}/api/tasks/small-only/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ blob: 'x'.repeat(5000) }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      'the payload is larger than task "small-only" accepts (maxPayload: 4 KiB); nothing was queued',
    );
    expect((await ctx.daemon.store.list({ task: 'small-only' })).length).toBe(before);
  });

  it('read-only rootfs, a non-root user and no network, with /runlet still writable', async () => {
    const r = await runWith('locked-down');
    expect(r.status).toBe('succeeded');
    expect(r.logTail).toContain('rootfs read-only');
    expect(r.logTail).toContain('uid=65534');
    expect(r.logTail).toContain('no eth0');
    expect(r.output).toEqual({ ok: true });
  });
});
