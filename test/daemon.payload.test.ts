import { describe, expect, it } from 'vitest';
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
