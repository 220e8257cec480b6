import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshotPath } from './helpers/browser.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

const CONFIG = `defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  hello: { command: [sh, -c, 'echo "hello $RUNLET_PAYLOAD"'] }
  slow:  { command: [sleep, "30"], killGrace: 1s }
`;
const ADMIN = 'admin-token-0123456789';
const OPERATOR = 'operator-token-0123456789';
const VIEWER = 'viewer-token-0123456789';
const LATER = 'later-viewer-token-0123456789';
const MASTER = 'runlet-token-0123456789';

const tokensYaml = (extra = '') => `tokens:
  - { name: ops-alice, token: "\${ALICE_TOKEN}", role: admin }
  - { name: ops-bob, token: ${OPERATOR}, role: operator }
  - { name: dash-carol, token: ${VIEWER}, role: viewer }
${extra}`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let daemon: TestDaemon;
let tokensFile: string;

beforeAll(async () => {
  process.env.ALICE_TOKEN = ADMIN;
  tokensFile = join(mkdtempSync(join(tmpdir(), 'runlet-tokens-')), 'tokens.yaml');
  writeFileSync(tokensFile, tokensYaml());
  redis = await startTestRedis();
  daemon = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: redis.url, token: MASTER, tokensFile, shutdownGraceMs: 500 });
});
afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await redis?.stopAndClean();
});

const call = async (token: string | undefined, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${daemon.url}${path}`, {
    method,
    headers: { ...(token && { authorization: `Bearer ${token}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text };
};

describe('tokens with roles on the ops API', () => {
  it('whoami names each token and its role; a wrong token is 401', async () => {
    expect((await call(ADMIN, 'GET', '/api/whoami')).body).toMatchObject({ name: 'ops-alice', role: 'admin', may: { reload: true } });
    expect((await call(OPERATOR, 'GET', '/api/whoami')).body).toMatchObject({
      name: 'ops-bob',
      role: 'operator',
      may: { run: true, reload: false },
    });
    expect((await call(VIEWER, 'GET', '/api/whoami')).body).toMatchObject({
      name: 'dash-carol',
      role: 'viewer',
      may: { run: false, logs: false },
    });
    expect((await call(MASTER, 'GET', '/api/whoami')).body).toMatchObject({ name: 'RUNLET_TOKEN', role: 'admin' });
    expect((await call('nope-nope-nope-nope', 'GET', '/api/whoami')).status).toBe(401);
    expect((await call(undefined, 'GET', '/api/tasks')).status).toBe(401);
  });

  it("a viewer reads tasks and runs but cannot start a run (403), nor read a run's payload or logs", async () => {
    expect((await call(VIEWER, 'GET', '/api/tasks')).status).toBe(200);
    const refused = await call(VIEWER, 'POST', '/api/tasks/hello/runs', { who: 'carol' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toBe('dash-carol (role viewer) may not POST /api/tasks/hello/runs: it needs the operator role');
    const started = await call(OPERATOR, 'POST', '/api/tasks/hello/runs', { who: 'bob' });
    expect(started.status).toBe(202);
    const run = await daemon.waitForEnd(started.body.id);
    expect(run.requestedBy).toBe('ops-bob');
    const asViewer = await call(VIEWER, 'GET', `/api/runs/${run.id}`);
    expect(asViewer.status).toBe(200);
    expect(asViewer.body).toMatchObject({ payload: null, logTail: '', output: null, requestedBy: 'ops-bob' });
    expect(JSON.stringify(asViewer.body)).not.toContain('"who"');
    expect((await call(VIEWER, 'GET', `/api/runs/${run.id}/logs`)).status).toBe(403);
    const asOperator = await call(OPERATOR, 'GET', `/api/runs/${run.id}`);
    expect(asOperator.body).toMatchObject({ payload: { who: 'bob' }, logTail: 'hello {"who":"bob"}\n', requestedBy: 'ops-bob' });
    expect((await call(OPERATOR, 'GET', `/api/runs/${run.id}/logs`)).body).toBe('hello {"who":"bob"}\n');
  });

  it('an operator runs, cancels, retries and pauses; each is recorded with who did it', async () => {
    const slow = await call(OPERATOR, 'POST', '/api/tasks/slow/runs');
    await expect
      .poll(async () => (await call(OPERATOR, 'GET', `/api/runs/${slow.body.id}`)).body.status, { timeout: 20_000 })
      .toBe('running');
    expect((await call(VIEWER, 'POST', `/api/runs/${slow.body.id}/cancel`)).status).toBe(403);
    expect((await call(OPERATOR, 'POST', `/api/runs/${slow.body.id}/cancel`)).status).toBe(202);
    const cancelled = await daemon.waitForEnd(slow.body.id);
    expect(cancelled).toMatchObject({ status: 'cancelled', requestedBy: 'ops-bob', cancelledBy: 'ops-bob' });
    const retry = await call(ADMIN, 'POST', `/api/runs/${slow.body.id}/retry`);
    expect(retry.status).toBe(202);
    expect((await call(ADMIN, 'GET', `/api/runs/${retry.body.id}`)).body.requestedBy).toBe('ops-alice');
    await call(ADMIN, 'POST', `/api/runs/${retry.body.id}/cancel`);
    expect((await call(VIEWER, 'POST', '/api/tasks/hello/pause')).status).toBe(403);
    expect((await call(OPERATOR, 'POST', '/api/tasks/hello/pause')).status).toBe(200);
    expect((await call(OPERATOR, 'POST', '/api/tasks/hello/resume')).status).toBe(200);

    const audit = await call(VIEWER, 'GET', '/api/audit?limit=50');
    const seen = (audit.body.entries as { who: string; action: string; target: string }[]).map((e) => `${e.who} ${e.action} ${e.target}`);
    // Newest first; refused actions are not in it.
    expect(seen.slice(0, 6)).toEqual([
      'ops-bob resume hello',
      'ops-bob pause hello',
      'ops-alice cancel slow',
      'ops-alice retry slow',
      'ops-bob cancel slow',
      'ops-bob run slow',
    ]);
  });

  it('an operator may not change tokens (reload is 403); an admin may, and the new file applies at once', async () => {
    writeFileSync(tokensFile, tokensYaml(`  - { name: late-dan, token: ${LATER}, role: viewer }\n`));
    expect((await call(LATER, 'GET', '/api/whoami')).status).toBe(401);
    expect((await call(OPERATOR, 'POST', '/api/reload')).status).toBe(403);
    expect((await call(LATER, 'GET', '/api/whoami')).status).toBe(401);
    const reload = await call(ADMIN, 'POST', '/api/reload');
    expect(reload.status).toBe(200);
    expect((await call(LATER, 'GET', '/api/whoami')).body).toMatchObject({ name: 'late-dan', role: 'viewer' });
    const audit = await call(ADMIN, 'GET', '/api/audit?limit=1');
    expect(audit.body.entries[0]).toMatchObject({ who: 'ops-alice', role: 'admin', action: 'reload' });
  });

  it('a tokens file with a mistake is refused with file, line and key, never the token; the tokens in use stay', async () => {
    writeFileSync(tokensFile, `tokens:\n  - { name: eve, token: short-secret, role: root }\n`);
    const reload = await call(ADMIN, 'POST', '/api/reload');
    expect(reload.status).toBe(422);
    expect(reload.body.error.message).toContain('tokens.yaml:2:');
    expect(reload.body.error.message).toContain('tokens[0].role: expected one of viewer, operator, admin');
    expect(reload.body.error.message).toContain('tokens[0].token: a token must be at least 16 characters');
    expect(reload.body.error.message).not.toContain('short-secret');
    expect((await call(LATER, 'GET', '/api/whoami')).status).toBe(200);
  });

  it('the dashboard hides what the role may not do, and the run page says who asked for the run', async () => {
    writeFileSync(tokensFile, tokensYaml());
    expect((await call(ADMIN, 'POST', '/api/reload')).status).toBe(200);
    const started = await call(OPERATOR, 'POST', '/api/tasks/hello/runs');
    await daemon.waitForEnd(started.body.id);
    const browser = await launchBrowser();
    try {
      const page = await browser.context.newPage();
      const signIn = async (token: string) => {
        await page.goto(`${daemon.url}/#/login`);
        await page.evaluate(() => localStorage.clear());
        await page.goto(`${daemon.url}/#/tasks`);
        await page.fill('#token', token);
        await page.click('#login button[type=submit]');
        await page.waitForSelector('#tasks tr[data-task="hello"]');
      };
      await signIn(VIEWER);
      expect(await page.evaluate(() => document.body.dataset.role)).toBe('viewer');
      expect(await page.isVisible('#tasks tr[data-task="hello"] details.run-now')).toBe(false);
      await page.evaluate((h) => (location.hash = h), `#/runs/${started.body.id}`);
      await page.waitForSelector('#main :text("Requested by")');
      expect(await page.textContent('#main')).toContain('ops-bob');
      expect(await page.textContent('#logs')).toBe('Your role may not read logs.');
      await page.screenshot({ path: screenshotPath('security-viewer-run'), fullPage: true });

      await signIn(OPERATOR);
      expect(await page.evaluate(() => document.body.dataset.role)).toBe('operator');
      expect(await page.isVisible('#tasks tr[data-task="hello"] details.run-now')).toBe(true);
    } finally {
      await browser.close();
    }
  });
});
