import { describe, expect, it } from 'vitest';
import { signHmac } from '../src/triggers/webhook/signature.js';
import { useDaemon } from './helpers/daemon.js';

// respond: result — the request waits for the run and answers with what it produced.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 32m, timeout: 20s }
tasks:
  quote:
    command: [sh, -c, 'printf "{\\"quoted\\": %s}" "$(cat /runlet/payload.json)" > /runlet/output.json']
    webhook: { secret: result-secret, respond: result, resultTimeout: 15s }
  say:
    command: [sh, -c, 'echo "said: $(cat)"']
    webhook: { secret: result-secret, respond: result, resultTimeout: 15s }
  broken:
    command: [sh, -c, 'echo "no luck" >&2; exit 3']
    webhook: { secret: result-secret, respond: result, resultTimeout: 15s }
  slow:
    command: [sleep, "4"]
    webhook: { secret: result-secret, respond: result, resultTimeout: 1s }
`;
const ctx = useDaemon(CONFIG);

const post = (task: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${ctx.daemon.url}/hooks/${task}`, {
    method: 'POST',
    body,
    headers: { 'x-runlet-signature': signHmac('result-secret', body), 'content-type': 'application/json', ...headers },
  });

describe('webhook respond: result', () => {
  it("200 with the container's output.json; a redelivery waits for the same run and gets the same answer", async () => {
    const body = '{"n": 1}';
    // The same signed request twice (signed once: a re-signed one is another event).
    const headers = { 'x-runlet-delivery': 'q-1', 'x-runlet-signature': signHmac('result-secret', body) };
    const [a, b] = await Promise.all([post('quote', body, headers), post('quote', body, headers)]);
    for (const res of [a!, b!]) {
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await res.text()).toBe('{"quoted": {"n": 1}}');
    }
    expect(a!.headers.get('location')).toBe(b!.headers.get('location'));
    expect(await ctx.daemon.store.list({ task: 'quote' })).toHaveLength(1);
  });

  it('200 with the log tail as text/plain when the task wrote no output.json', async () => {
    const res = await post('say', 'hello');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('said: hello\n');
  });

  it('502 naming status, reason and run id when the container fails', async () => {
    const res = await post('broken', '{}');
    expect(res.status).toBe(502);
    const body = (await res.json()) as { id: string; status: string; reason: string; error: { code: string; message: string } };
    expect(body).toMatchObject({ status: 'failed', error: { code: 'RUN_NOT_SUCCEEDED' } });
    expect(body.reason).toMatch(/exit code 3/);
    expect(res.headers.get('location')).toBe(`/api/runs/${body.id}`);
    expect((await ctx.daemon.store.get(body.id))?.status).toBe('failed');
  });

  it('504 with the run id and Location when the run does not end within resultTimeout; the run goes on', async () => {
    const t0 = Date.now();
    const res = await post('slow', '{}');
    expect(res.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(3000);
    const body = (await res.json()) as { id: string; status: string; error: { code: string; message: string } };
    expect(body.error.code).toBe('RESULT_TIMEOUT');
    expect(['queued', 'starting', 'running']).toContain(body.status);
    expect(res.headers.get('location')).toBe(`/api/runs/${body.id}`);
    expect(body.error.message).toContain(`run ${body.id} did not end within 1s`);
    expect((await ctx.daemon.waitForEnd(body.id)).status).toBe('succeeded');
  });
});
