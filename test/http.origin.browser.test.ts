import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from './helpers/browser.js';
import { useDaemon } from './helpers/daemon.js';

// The `npm start` default: no token, listening on 127.0.0.1. A page on another origin, in
// a real chromium on the same machine, tries to drive it; the daemon's state is then read
// from the test side.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  target: { command: [sh, -c, 'true'] }
  open-hook: { command: [sh, -c, 'true'], webhook: { auth: none } }
  own: { command: [sh, -c, 'echo own'] }
`;
const ctx = useDaemon(CONFIG);

// evil.example is given 127.0.0.1 inside the browser only, as a rebinding attacker's DNS
// would after the first lookup: the page's origin is then the daemon's address under the
// attacker's name.
const REBOUND = 'evil.example';
let page: Page;
let closeBrowser: (() => Promise<void>) | undefined;
let foreign: Server;
let foreignPort: number;

/** What the other site's page does: POSTs the browser sends without asking (no-cors), answers unreadable. */
const ATTACK_PAGE = `<!doctype html><title>another site</title>
<script>
  window.attack = async (daemon) => {
    const post = (path) => fetch(daemon + path, { method: 'POST', mode: 'no-cors' }).then(() => 'sent', (e) => String(e));
    return [await post('/api/tasks/target/runs'), await post('/api/tasks/target/pause'), await post('/hooks/open-hook')];
  };
</script>`;

const daemonPort = () => Number(new URL(ctx.daemon.url).port);
const runsOf = async (task: string) => (await ctx.daemon.store.list({ task })).length;
const isPaused = async (task: string) =>
  ((await (await fetch(`${ctx.daemon.url}/api/tasks/${task}`)).json()) as { paused: boolean }).paused;

beforeAll(async () => {
  foreign = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(ATTACK_PAGE));
  await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
  foreignPort = (foreign.address() as AddressInfo).port;
  const b = await launchBrowser({ args: [`--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`] });
  closeBrowser = b.close;
  page = await b.context.newPage();
});
afterAll(async () => {
  await closeBrowser?.();
  await new Promise((r) => foreign?.close(r));
});

describe('a page on another origin, in chromium, against a daemon without a token', () => {
  // 127.0.0.1:<other port> is same-site to the daemon (Sec-Fetch-Site: same-site);
  // localhost:<other port> is cross-site. Both are another origin.
  it.each([
    ['another port on 127.0.0.1', () => `http://127.0.0.1:${foreignPort}/`],
    ['localhost', () => `http://localhost:${foreignPort}/`],
  ])('from %s: no-cors POSTs start no run, pause nothing and trigger no webhook', async (_name, url) => {
    await page.goto(url());
    const sent = await page.evaluate(
      (daemon) => (window as unknown as { attack: (d: string) => Promise<string[]> }).attack(daemon),
      ctx.daemon.url,
    );
    // The browser did send them (a refused request still resolves as an opaque response).
    expect(sent).toEqual(['sent', 'sent', 'sent']);
    expect(await runsOf('target')).toBe(0);
    expect(await runsOf('open-hook')).toBe(0);
    expect(await isPaused('target')).toBe(false);
    const refusals = ctx.daemon.logs.lines.filter((l) => l.msg === 'refused a state change from another origin');
    expect(refusals.length).toBeGreaterThanOrEqual(3);
  });

  it('DNS rebinding: a page whose name now points at 127.0.0.1 can neither read the API nor change anything', async () => {
    const origin = `http://${REBOUND}:${daemonPort()}`;
    const nav = await page.goto(`${origin}/`);
    expect(nav?.status()).toBe(421);
    // Same origin as far as the browser knows, so it could read every answer.
    const seen = await page.evaluate(async () => {
      const tasks = await fetch('/api/tasks');
      const run = await fetch('/api/tasks/target/runs', { method: 'POST' });
      const health = await fetch('/healthz');
      return { tasks: tasks.status, body: await tasks.text(), run: run.status, health: health.status };
    });
    expect(seen).toMatchObject({ tasks: 421, run: 421, health: 421 });
    expect(seen.body).not.toContain('"target"');
    expect(JSON.parse(seen.body).error.message).toContain(`refused Host "${REBOUND}:${daemonPort()}"`);
    expect(JSON.parse(seen.body).error.message).toContain('RUNLET_ALLOWED_HOSTS');
    expect(await runsOf('target')).toBe(0);
  });

  it('DNS rebinding, without a browser: a request with Host evil.example is refused with 421 and runs nothing', async () => {
    const send = (method: string, path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: daemonPort(), method, path, headers: { host: `${REBOUND}:${daemonPort()}` } },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const read = await send('GET', '/api/runs');
    expect(read.status).toBe(421);
    expect(JSON.parse(read.body).error).toMatchObject({ code: 'HOST_NOT_ALLOWED' });
    expect((await send('POST', '/api/tasks/target/runs')).status).toBe(421);
    expect((await send('POST', '/api/tasks/target/pause')).status).toBe(421);
    expect((await send('GET', '/metrics')).status).toBe(421);
    expect(await runsOf('target')).toBe(0);
    expect(await isPaused('target')).toBe(false);
    // Refused, logged, and the daemon goes on answering.
    expect(
      ctx.daemon.logs.lines.some(
        (l) => l.msg === 'refused a request for a host name this daemon does not answer to' && l.host === `${REBOUND}:${daemonPort()}`,
      ),
    ).toBe(true);
    expect((await fetch(`${ctx.daemon.url}/healthz`)).status).toBe(200);
  });
});

describe("the dashboard on the daemon's own origin", () => {
  it('Run now still queues a run, and its own-origin POSTs (pause, resume, retry) still work', async () => {
    await page.goto(`${ctx.daemon.url}/#/tasks`);
    const row = 'tr[data-task="own"]';
    await page.waitForSelector(`#tasks ${row}`);
    await page.click(`${row} details.run-now summary`);
    await page.click(`${row} button[type=submit]`);
    const msg = await page.waitForSelector(`${row} .msg[data-run-id]`);
    const id = (await msg.getAttribute('data-run-id'))!;
    expect((await ctx.daemon.waitForEnd(id)).status).toBe('succeeded');

    // What the dashboard's post() sends, from its own page: Origin and Sec-Fetch-Site are the daemon's.
    const statuses = await page.evaluate(async (runId) => {
      const post = async (path: string) => (await fetch(path, { method: 'POST' })).status;
      return [await post('/api/tasks/own/pause'), await post('/api/tasks/own/resume'), await post(`/api/runs/${runId}/retry`)];
    }, id);
    expect(statuses).toEqual([200, 200, 202]);
    expect(await isPaused('own')).toBe(false);
    const runs = await ctx.daemon.store.list({ task: 'own' });
    expect(runs).toHaveLength(2);
    await Promise.all(runs.map((r) => ctx.daemon.waitForEnd(r.id)));
  });

  it('served as localhost:<port> it is its own origin too', async () => {
    await page.goto(`http://localhost:${daemonPort()}/#/tasks`);
    await page.waitForSelector('#tasks tr[data-task="own"]');
    const status = await page.evaluate(async () => (await fetch('/api/tasks/own/pause', { method: 'POST' })).status);
    expect(status).toBe(200);
    expect(await isPaused('own')).toBe(true);
  });
});
