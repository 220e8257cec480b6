import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium, installed by scripts/setup.sh. A browser is never downloaded. */
export const CHROMIUM = '/usr/bin/chromium';

/** Screenshots of the pages, for people reviewing a change (git-ignored). */
export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

/**
 * A headless chromium with a fresh profile, and nothing that phones home: component
 * updates, sync, translation and the like would be network calls a test machine can't make
 * and would slow the start. Close it with `close()`, which also removes the profile.
 *
 * playwright refuses `--user-data-dir` in `launch()`'s args; `launchPersistentContext`
 * is the same launch with the fresh profile directory as its own parameter. `args` adds
 * switches (e.g. --host-resolver-rules to give a test name an address without DNS).
 */
export async function launchBrowser(
  opts: { args?: readonly string[] } = {},
): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'runlet-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      '--disable-features=Translate,MediaRouter,OptimizationHints',
      ...(opts.args ?? []),
    ],
    viewport: { width: 1360, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export const screenshotPath = (name: string): string => join(ARTIFACTS, `${name}.png`);
