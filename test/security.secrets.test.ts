import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshotPath } from './helpers/browser.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCli } from './helpers/process.js';
import { startTestRedis } from './helpers/redis.js';

// A value no test output would contain by chance, read from the daemon's environment.
const API_KEY = 'sk-live-7f3a9c0e2b51d84a';
const ENV = { API_KEY };
// Prints its secret on lines of its own, with time between them so live followers see it
// arrive chunk by chunk; also a line with the secret's prefix only (not masked: not the secret).
const CONFIG = `defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  leaky:
    description: Prints its secret.
    env: { GREETING: hello }
    secrets: { API_KEY: "\${API_KEY}" }
    command: [sh, -c, 'echo "start $GREETING"; sleep 1.5; echo "key=$API_KEY"; sleep 0.5; echo "again $API_KEY end"; echo "prefix sk-live-7f3a"; sleep 0.5; echo done; exit 3']
`;
const TOKEN = 'secrets-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let daemon: TestDaemon;

beforeAll(async () => {
  redis = await startTestRedis();
  daemon = await startTestDaemon({ config: configFrom(CONFIG, ENV), redisUrl: redis.url, token: TOKEN, shutdownGraceMs: 500 });
});
afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await redis?.stopAndClean();
});

/** Everything a key holds, as text, whatever its type. */
async function contentOf(r: Redis, key: string): Promise<string> {
  const type = await r.type(key);
  if (type === 'string') return (await r.get(key)) ?? '';
  if (type === 'hash') return JSON.stringify(await r.hgetall(key));
  if (type === 'list') return JSON.stringify(await r.lrange(key, 0, -1));
  if (type === 'set') return JSON.stringify(await r.smembers(key));
  if (type === 'zset') return JSON.stringify(await r.zrange(key, 0, -1));
  if (type === 'stream') return JSON.stringify(await r.xrange(key, '-', '+'));
  return '';
}

const startRun = async (): Promise<string> => {
  const res = await fetch(`${daemon.url}/api/tasks/leaky/runs`, { method: 'POST', headers: auth });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
};

/** What the run printed, masked: the secret's lines show ***, and nothing else changed. */
const MASKED = 'start hello\nkey=***\nagain *** end\nprefix sk-live-7f3a\ndone\n';

describe('secrets reach the container and are never shown', () => {
  it('the container gets the secret; GET /api/runs/:id/logs and the run record show *** instead', async () => {
    const id = await startRun();
    const run = await daemon.waitForEnd(id);
    expect(run.status).toBe('failed');
    const logs = await fetch(`${daemon.url}/api/runs/${id}/logs`, { headers: auth });
    // The program printed the real value (the mask is ours, not the container's): the line is there, masked.
    expect(await logs.text()).toBe(MASKED);
    // Nowhere in the record, nor in anything stored under the run's keys.
    const record = await fetch(`${daemon.url}/api/runs/${id}`, { headers: auth });
    expect(await record.text()).not.toContain(API_KEY);
    const probe = new Redis({ path: redis.path });
    try {
      const keys = await probe.keys('*');
      expect(keys.length).toBeGreaterThan(3);
      for (const key of keys) expect(await contentOf(probe, key), `key ${key}`).not.toContain(API_KEY);
    } finally {
      probe.disconnect();
    }
  });

  it('logs?follow=1 streams the output live with the secret masked', async () => {
    const id = await startRun();
    const res = await fetch(`${daemon.url}/api/runs/${id}/logs?follow=1`, { headers: auth });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const pieces: string[] = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pieces.push(decoder.decode(value, { stream: true }));
    }
    // Several pieces: followed while it ran, not one read at the end.
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(MASKED);
  });

  it("the run's page in Chromium shows *** and never the value", async () => {
    const browser = await launchBrowser();
    try {
      const page: Page = await browser.context.newPage();
      await page.goto(`${daemon.url}/#/tasks`);
      await page.fill('#token', TOKEN);
      await page.click('#login button[type=submit]');
      await page.waitForSelector('#tasks tr[data-task="leaky"]');
      expect(await page.content()).not.toContain(API_KEY);
      const id = await startRun();
      await page.evaluate((h) => (location.hash = h), `#/runs/${id}`);
      await page.waitForSelector('#logs:has-text("key=***")', { timeout: 20_000 });
      await page.waitForSelector('#logs:has-text("done")', { timeout: 20_000 });
      await page.waitForSelector('#run-status [data-status="failed"]', { timeout: 20_000 });
      expect(await page.textContent('#logs')).toBe(MASKED);
      expect(await page.content()).not.toContain(API_KEY);
      await page.screenshot({ path: screenshotPath('security-secret-masked'), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  it('GET /api/tasks never shows the value (nor env values)', async () => {
    const text = await (await fetch(`${daemon.url}/api/tasks`, { headers: auth })).text();
    expect(text).toContain('leaky');
    expect(text).not.toContain(API_KEY);
  });

  it('runlet validate names the secret, never its value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlet-secrets-'));
    const file = join(dir, 'runlet.yaml');
    writeFileSync(file, CONFIG);
    const { code, stdout, stderr } = await runCli(['validate', '-c', file], ENV, dir);
    expect(code).toBe(0);
    expect(stdout).toContain('secrets  API_KEY (values hidden)');
    expect(stdout + stderr).not.toContain(API_KEY);
  });
});
