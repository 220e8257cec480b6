import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/**
 * CI's dependency audit, in `npm test` (CI runs nothing else): `npm audit --omit=dev` fails
 * the suite on a high or critical advisory in a runtime dependency; dev dependencies are
 * pinned by the lockfile and never ship. When the registry has no audit endpoint (a mirror
 * that answers 405, no network), the test says so loudly and is skipped, unless
 * RUNLET_REQUIRE_AUDIT=1 (set it where the real registry is reachable) makes that a failure.
 */
describe('npm audit --omit=dev', () => {
  it('finds no high or critical advisory in a runtime dependency', { timeout: 120_000 }, async (ctx) => {
    let stdout: string;
    try {
      ({ stdout } = await run('npm', ['audit', '--omit=dev', '--json'], { maxBuffer: 64 * 1024 * 1024, timeout: 110_000 }));
    } catch (err) {
      // npm audit exits non-zero when it finds anything; its JSON is on stdout either way.
      stdout = (err as { stdout?: string }).stdout ?? '';
    }
    const report = JSON.parse(stdout || '{}') as {
      error?: { summary?: string; code?: string };
      message?: string;
      metadata?: { vulnerabilities?: Record<string, number> };
      vulnerabilities?: Record<string, { severity: string; via: unknown[] }>;
    };
    if (!report.metadata) {
      const why = `npm audit could not ask the registry: ${report.message || report.error?.summary || stdout.slice(0, 300)}`;
      if (process.env.RUNLET_REQUIRE_AUDIT === '1') throw new Error(why);
      console.warn(`\n*** SKIPPED: ${why}\n*** Set RUNLET_REQUIRE_AUDIT=1 to make this a failure.\n`);
      ctx.skip(why);
      return;
    }
    const bad = Object.entries(report.vulnerabilities ?? {})
      .filter(([, v]) => v.severity === 'high' || v.severity === 'critical')
      .map(([name, v]) => `${name} (${v.severity})`);
    expect(bad, 'runtime dependencies with high or critical advisories').toEqual([]);
  });
});
