import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { useDaemon } from './helpers/daemon.js';

/**
 * The live /metrics page as Prometheus' own linter reads it: `promtool check metrics` (Debian's
 * prometheus package, installed by scripts/setup.sh) checks names against the naming
 * conventions (base units, `_total` on counters, no abbreviated units). A run has ended
 * first, so the usage counters and both histograms have samples, not only HELP and TYPE.
 */

const YAML = `defaults: { image: runlet/busybox:local, memory: 64m, timeout: 30s }
tasks:
  ok: { command: [sh, -c, 'echo fine'] }
`;

/** `promtool check metrics` on `text`; promtool missing fails the test, naming the set-up that installs it. */
function promtoolCheck(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) {
    throw new Error(
      `promtool could not run (${r.error.message}): scripts/setup.sh installs it (Debian's prometheus package; npm test runs set-up)`,
    );
  }
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('GET /metrics passes promtool check metrics', () => {
  const ctx = useDaemon(YAML);

  it('has no finding about a runlet metric, after a run, so its counters and histograms have samples', async () => {
    const d = ctx.daemon;
    const ended = d.events.once('run:finished', (e) => e.task === 'ok');
    await d.submit({ task: 'ok', trigger: 'manual', dedupeKey: 'ok:manual:1' });
    await ended;
    const res = await fetch(`${d.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    // The run's samples are there: promtool lints what a real scrape holds.
    expect(text).toMatch(/^runlet_run_duration_seconds_count\{task="ok",status="succeeded"\} 1$/m);
    expect(text).toMatch(/^runlet_run_queue_wait_seconds_count\{task="ok"\} 1$/m);
    expect(text).toMatch(/^runlet_container_seconds_total\{task="ok"\} [0-9.e+-]+$/m);

    const { status, output } = promtoolCheck(text);
    const findings = output.split('\n').filter((l) => l.trim() !== '');
    // prom-client names its default metrics (runlet_process_*), we name the rest. Its
    // findings are shown apart; they still fail the exit code below: drop the metric in
    // MISNAMED_DEFAULT_METRICS (src/runs/metrics.ts) as the nodejs_active_*_total gauges are.
    const ours = findings.filter((l) => /^runlet_(?!process_)/.test(l));
    const promClients = findings.filter((l) => !ours.includes(l));
    if (promClients.length > 0) console.log(`promtool on prom-client's default metrics:\n${promClients.join('\n')}`);
    expect(ours, output).toEqual([]);
    expect(status, `promtool check metrics exited ${status}:\n${output}`).toBe(0);
    // Memory-time in base units (bytes × seconds), where runlet_gb_seconds_total was.
    expect(text).toMatch(/^runlet_memory_limit_byte_seconds_total\{task="ok"\} [0-9.e+-]+$/m);
  });
});
