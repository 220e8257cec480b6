/**
 * The benchmark suite (`npm run bench`): latency, throughput, daemon cost, webhook intake and
 * scale-out, one after another, each printing runlet beside its floor from the same run; a
 * summary of every target at the end. Each module also runs alone (see its header).
 *
 *   node dist/bench/all.js [--quick] [--only latency,throughput,daemon-cost,webhook-intake,scale-out]
 *
 * --throughput-runs N: runs per concurrency level (default 200).
 * --quick: fewer runs everywhere (latency 20, throughput 50 per level, daemon cost without
 * 10,000 tasks and a 10 s idle window, intake 2,000 × 2, scale-out 40).
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { daemonCost } from './daemon-cost.js';
import { latency } from './latency.js';
import { flag, numFlag } from './lib.js';
import { scaleOut } from './scale-out.js';
import { throughput } from './throughput.js';
import { webhookIntake } from './webhook-intake.js';

const quick = process.argv.includes('--quick');
const only = new Set(flag('only', 'latency,throughput,daemon-cost,webhook-intake,scale-out').split(','));

async function main() {
  const engine = execFileSync('docker', ['version', '--format', '{{.Server.Version}}']).toString().trim();
  const load = () => execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).join(' ');
  console.log(
    `# runlet benchmarks, ${new Date().toISOString()}: ${cpus().length} cores, Docker ${engine}, node ${process.version}, load ${load()}${quick ? ', --quick' : ''}\n`,
  );
  const summary: string[] = [];
  const section = async (name: string, run: () => Promise<{ lines: string[] }>, sum: (r: never) => string) => {
    if (!only.has(name)) return;
    const t0 = performance.now();
    try {
      const r = await run();
      console.log(r.lines.join('\n'));
      summary.push(`- ${name}: ${sum(r as never)}`);
    } catch (err) {
      console.log(`## ${name}: FAILED: ${(err as Error).message}`);
      summary.push(`- ${name}: failed (${(err as Error).message})`);
    }
    console.log(`\n(${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s, load after ${load()})\n`);
  };
  await section(
    'latency',
    () => latency(quick ? 20 : 50),
    (r: { p50Ratio: number; p95Ratio: number }) =>
      `worst trigger → succeeded p50 ${r.p50Ratio.toFixed(2)}× floor (target ≤ 1.10×), p95 ${r.p95Ratio.toFixed(2)}× (target ≤ 1.25×)`,
  );
  await section(
    'throughput',
    () => throughput(numFlag('throughput-runs', quick ? 50 : 200), [1, 2, 4, 8, 16]),
    (r: { worstRatio: number }) => `worst runs/s ${r.worstRatio.toFixed(2)}× raw (target ≥ 0.9×)`,
  );
  await section(
    'daemon-cost',
    () => daemonCost(quick ? [10, 1000] : [10, 1000, 10000], quick ? [1000] : [1000, 10000], quick ? 10 : 30, 60),
    () =>
      'see its tables (targets: connections flat in tasks, /healthz ≤ 5 s at 10,000, RSS ≤ floor + 30/100 MB, CPU < 0.5 %, lateness p99 ≤ 50/200 ms)',
  );
  await section(
    'webhook-intake',
    () => webhookIntake(quick ? 2000 : 5000, 32, quick ? 2 : 3),
    (r: { ratio: number }) => `${r.ratio.toFixed(2)}× the bare route (target ≥ 0.5×)`,
  );
  await section(
    'scale-out',
    () => scaleOut(quick ? 40 : 100, [1, 2, 3]),
    () => 'see its table (coordination cost on 2 cores, not capacity)',
  );
  console.log(`## summary\n\n${summary.join('\n')}`);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
