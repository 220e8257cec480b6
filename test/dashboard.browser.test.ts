import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshotPath } from './helpers/browser.js';
import { configFrom, startTestDaemon, useDaemon } from './helpers/daemon.js';

// hog: two runs of 48m fit the task's concurrency (2) but not the pool's 64m budget, so
// the second waits for memory, and after a second it counts as stuck.
const CONFIG = `
stuck: { queued: 1s }
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 2m, killGrace: 1s }
pools:
  big: { concurrency: 4, memory: 64m }
tasks:
  hello:   { description: Says hello., command: [sh, -c, 'echo "hello $RUNLET_PAYLOAD"; sleep 0.3'] }
  chatty:  { description: Prints a line every 0.7 s., command: [sh, -c, 'for i in 1 2 3 4 5 6; do echo "log line $i"; sleep 0.7; done'] }
  linger:  { command: [sleep, "120"] }
  nightly: { schedule: "0 3 * * *", timezone: Europe/Vienna, command: [sh, -c, 'true'] }
  hog:     { pool: big, memory: 48m, concurrency: 2, command: [sleep, "120"] }
`;
const TOKEN = 'dashboard-token';
const ctx = useDaemon(CONFIG, { token: TOKEN, host: '127.0.0.1', shutdownGraceMs: 500 });

let page: Page;
let closeBrowser: (() => Promise<void>) | undefined;

const api = async <T = Record<string, unknown>>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> => {
  const res = await fetch(`${ctx.daemon.url}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers ?? {}) } });
  const text = await res.text();
  return { status: res.status, body: (text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as T };
};
const startRun = async (task: string): Promise<string> =>
  (await api<{ id: string }>(`/api/tasks/${task}/runs`, { method: 'POST' })).body.id;
const shot = (name: string) => page.screenshot({ path: screenshotPath(name), fullPage: true });
const goto = async (hash: string) => {
  await page.evaluate((h) => (location.hash = h), hash);
};
const waitLive = () => page.waitForSelector('#live[data-state="live"]');

beforeAll(async () => {
  const b = await launchBrowser();
  closeBrowser = b.close;
  page = await b.context.newPage();
  // Cancel asks for confirmation.
  page.on('dialog', (d) => void d.accept());
});
afterAll(async () => {
  await closeBrowser?.();
});

describe('dashboard in a browser', () => {
  it('serves its files without the token, asks for the token, and lists the tasks', async () => {
    const html = await fetch(`${ctx.daemon.url}/`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect((await fetch(`${ctx.daemon.url}/api/tasks`)).status).toBe(401);

    await page.goto(`${ctx.daemon.url}/#/tasks`);
    await page.waitForSelector('#login');
    await shot('dashboard-login');
    await page.fill('#token', 'wrong');
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#login-error:has-text("Wrong token")');
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#tasks tr[data-task="hello"]');
    const names = await page.$$eval('#tasks tbody tr[data-task]', (rows) => rows.map((r) => (r as HTMLElement).dataset.task));
    expect(names.sort()).toEqual(['chatty', 'hello', 'hog', 'linger', 'nightly']);
    const nightly = await page.textContent('#tasks tr[data-task="nightly"]');
    expect(nightly).toContain('cron "0 3 * * *" (Europe/Vienna)');
    // Three next times, each in Vienna time and in the viewer's.
    expect(await page.$$eval('#tasks tr[data-task="nightly"] td.next li', (li) => li.length)).toBe(3);
    expect(await page.evaluate(() => localStorage.getItem('runlet.token'))).toBe(TOKEN);
    await waitLive();
  });

  it('a run started elsewhere appears in History without a reload, and its row follows its status', async () => {
    await goto('#/history');
    await page.waitForSelector('#history');
    await waitLive();
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const id = await startRun('hello');
    await page.waitForSelector(`#history tr[data-run-id="${id}"]`, { timeout: 10_000 });
    await page.waitForSelector(`#history tr[data-run-id="${id}"][data-status="succeeded"]`, { timeout: 20_000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  });

  it('Run now with a payload queues a run, and the task row shows it succeed', async () => {
    await goto('#/tasks');
    const row = 'tr[data-task="hello"]';
    await page.waitForSelector(`#tasks ${row}`);
    await page.click(`${row} details.run-now summary`);
    await page.fill(`${row} textarea[name=payload]`, '{"who": "browser"}');
    await page.click(`${row} button[type=submit]`);
    const msg = await page.waitForSelector(`${row} .msg[data-run-id]`);
    const id = await msg.getAttribute('data-run-id');
    expect(id).toBeTruthy();
    await page.waitForSelector(`${row} a.last-status[data-run-id="${id}"] [data-status="succeeded"]`, { timeout: 20_000 });
    const run = await api<{ payload: unknown; trigger: string }>(`/api/runs/${id}`);
    expect(run.body).toMatchObject({ payload: { who: 'browser' }, trigger: 'manual' });
    // The strip has a bar per run of the task so far (one from the test above, this one).
    expect(await page.$$eval(`${row} svg.strip rect`, (r) => r.length)).toBe(2);
    await shot('dashboard-tasks');
  });

  it("shows a run's logs live while it runs", async () => {
    const id = await startRun('chatty');
    await goto(`#/runs/${id}`);
    await page.waitForSelector('#logs:has-text("log line 1")', { timeout: 20_000 });
    // Seen while the run was still going, not read once at the end.
    const midway = await api<{ status: string }>(`/api/runs/${id}`);
    expect(['starting', 'running']).toContain(midway.body.status);
    await page.waitForSelector('#logs:has-text("log line 6")', { timeout: 20_000 });
    await page.waitForSelector('#run-status [data-status="succeeded"]', { timeout: 20_000 });
    const text = await page.textContent('#logs');
    expect(text?.match(/log line \d/g)).toEqual(['log line 1', 'log line 2', 'log line 3', 'log line 4', 'log line 5', 'log line 6']);
    await page.waitForSelector('#log-state:has-text("complete")');
    await shot('dashboard-run');
  });

  it('cancels a running run from its page', async () => {
    const id = await startRun('linger');
    await goto(`#/runs/${id}`);
    await page.waitForSelector('#run-status [data-status="running"]', { timeout: 20_000 });
    await page.click('#cancel');
    await page.waitForSelector('#run-status [data-status="cancelled"]', { timeout: 20_000 });
    expect((await api<{ status: string }>(`/api/runs/${id}`)).body.status).toBe('cancelled');
    // An ended run offers Retry instead.
    await page.waitForSelector('#retry');
  });

  it('Now: a run held back by its pool memory budget waits, and is listed as stuck', async () => {
    const started = ctx.daemon.events.once('run:started', (e) => e.task === 'hog', 20_000);
    const first = await startRun('hog');
    await started;
    const second = await startRun('hog');
    try {
      await goto('#/now');
      await page.waitForSelector(`#running tr[data-run-id="${first}"]`, { timeout: 10_000 });
      await page.waitForSelector(`#queued tr[data-run-id="${second}"]`, { timeout: 10_000 });
      const running = await page.textContent(`#running tr[data-run-id="${first}"]`);
      expect(running).toContain('48 MiB');
      expect(running).toContain('of 2m 0s');

      // Why it waits, as /api/status words it (a { code, text } object, or a string).
      const status = await api<{ queued: Array<{ id: string; waitReason?: string | { text: string } }> }>('/api/status');
      const reason = status.body.queued.find((q) => q.id === second)?.waitReason;
      const reasonText = typeof reason === 'string' ? reason : reason?.text;
      if (reasonText)
        await page.waitForSelector(`#queued tr[data-run-id="${second}"] td.why:has-text(${JSON.stringify(reasonText.slice(0, 24))})`, {
          timeout: 10_000,
        });

      const stuck = await api('/api/stuck');
      if (stuck.status === 404) {
        // GET /api/stuck is not on this daemon yet: the page says so instead of failing.
        await page.waitForSelector('#stuck:has-text("Not available")');
      } else {
        // The page looks again every 5 s: stuck is a matter of waiting, which sends no event.
        await page.waitForSelector('#stuck tr[data-task="hog"]', { timeout: 15_000 });
      }
      await shot('dashboard-now');
    } finally {
      await api(`/api/runs/${second}/cancel`, { method: 'POST' });
      await api(`/api/runs/${first}/cancel`, { method: 'POST' });
    }
  });

  it('Now: the nodes section shows each live node with its runs and memory, and a gone node marked as gone', async () => {
    // A node seen before and stopped (its heartbeat is gone, its last beat kept), and a second live node.
    const gone = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: ctx.redis.url, node: 'node-gone', shutdownGraceMs: 500 });
    await gone.stop();
    const other = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: ctx.redis.url, node: 'node-other', shutdownGraceMs: 500 });
    const id = await startRun('linger');
    try {
      await goto('#/now');
      await page.waitForSelector('#nodes tr[data-node="node-gone"][data-state="gone"]', { timeout: 20_000 });
      await page.waitForSelector('#nodes tr[data-node="node-other"][data-state="live"]');
      await page.waitForSelector('#nodes tr[data-node="test-node"][data-state="live"]');
      // The run shows under the node that holds it once that node's next heartbeat carries it
      // (every 5 s; the page looks again every 5 s).
      const row = await page.waitForSelector(`#nodes tr[data-state="live"]:has(a[href="#/runs/${id}"])`, { timeout: 20_000 });
      expect(await row.$eval('td.runs', (td) => (td as HTMLElement).dataset.count)).toBe('1');
      expect(await row.$eval('td.memory', (td) => td.textContent)).toContain('16 MiB');
      expect(await row.$eval('td.beat', (td) => td.textContent)).toMatch(/ago$/);
      const goneRow = '#nodes tr[data-node="node-gone"]';
      expect(await page.textContent(`${goneRow} .badge`)).toBe('gone');
      expect(await page.textContent(`${goneRow} td.beat`)).toContain('last seen');
      expect(await page.textContent(`${goneRow} td.runs`)).toContain('had 0');
      // Live nodes first, then the gone one.
      expect(await page.$$eval('#nodes tbody tr[data-node]', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.node))).toEqual([
        'node-other',
        'test-node',
        'node-gone',
      ]);
      await shot('dashboard-nodes');
    } finally {
      await api(`/api/runs/${id}/cancel`, { method: 'POST' });
      await other.stop();
    }
  });

  it('History filters by task and status', async () => {
    await goto('#/history?task=hello&status=succeeded');
    await page.waitForSelector('#history tbody tr[data-run-id]');
    const rows = await page.$$eval('#history tbody tr[data-run-id]', (trs) =>
      trs.map((tr) => [tr.children[1].textContent, (tr as HTMLElement).dataset.status]),
    );
    expect(rows).toHaveLength(2);
    for (const [task, status] of rows) expect([task, status]).toEqual(['hello', 'succeeded']);
    // The filter form shows what is applied.
    expect(await page.$eval('#filters select[name=task]', (s) => (s as HTMLSelectElement).value)).toBe('hello');
    await goto('#/history');
    await page.waitForSelector('#history tbody tr[data-status="cancelled"]');
    await shot('dashboard-history');
  });

  it('Usage shows used against always-on GB-seconds, or says it is not available', async () => {
    await goto('#/usage');
    const usage = await api('/api/usage?days=30');
    if (usage.status === 404) {
      await page.waitForSelector('#usage-na');
    } else {
      await page.waitForSelector('#usage-chart');
      await page.waitForSelector('#usage-tasks tr[data-task="hello"]');
    }
    await shot('dashboard-usage');
  });
});
