/**
 * Scale-out: trivial runs per second with 1, 2 and 3 daemons (the built CLI) on one Redis,
 * each on a Docker engine of its own (/work/shared/tools/engine-host.sh, through
 * test/helpers/cluster.ts). N manual runs are submitted to the first daemon's HTTP API at
 * once; any daemon may take them. On a 2-core machine three engines and three daemons share
 * the same cores, so this shows what coordinating through Redis costs, not added capacity.
 *
 *   node dist/bench/scale-out.js [--runs 100] [--daemons 1,2,3]
 *
 * Takes the engines b1234567, c1234567 and u1, and brings them down at the end.
 */
import Docker from 'dockerode';
import { fileURLToPath } from 'node:url';
import { keys } from '../src/runs/keys.js';
import { startCluster } from '../test/helpers/cluster.js';
import { IMAGE, SUITE_ID, SUITE_LABEL, listFlag, numFlag, row, sleep, within } from './lib.js';

const ENGINES = ['b1234567', 'c1234567', 'u1'];
const LABEL = 'runlet.x-bench';
const TASK = 'scale';

const TERMINAL = new Set(['succeeded', 'failed', 'timed_out', 'oom_killed', 'lost', 'cancelled', 'skipped']);

export interface ScaleOutResult {
  readonly lines: string[];
}

export async function scaleOut(runs: number, daemonCounts: readonly number[]): Promise<ScaleOutResult> {
  const max = Math.max(...daemonCounts);
  const yaml = `tasks:\n  ${TASK}: { image: ${IMAGE}, command: ["true"], memory: 16m, cpus: 0.5, concurrency: 24, maxQueued: 100000 }\n`;
  const cluster = await startCluster({
    yamlText: yaml,
    engineNames: ENGINES.slice(0, max),
    images: [IMAGE],
    env: { RUNLET_LABELS: `${LABEL}=scale-out,${SUITE_LABEL}=${SUITE_ID}` },
  });
  const results: { daemons: number; rate: number; byNode: Record<string, number>; failed: number }[] = [];
  try {
    let started = 0;
    for (const k of [...daemonCounts].sort((a, b) => a - b)) {
      while (started < k) await within(cluster.nodes[started++]!.start(), 120_000, `daemon ${started}`);
      const base = await cluster.redisClient.zcard(keys.taskRuns(TASK));
      const url = await cluster.nodes[0]!.url();
      const t0 = performance.now();
      const ids: string[] = [];
      for (let i = 0; i < runs; i++) {
        const res = await fetch(`${url}/api/tasks/${TASK}/runs`, { method: 'POST' });
        if (res.status !== 202) throw new Error(`manual run answered ${res.status}: ${await res.text()}`);
        ids.push(((await res.json()) as { id: string }).id);
      }
      // Done when every run has a terminal status (read from Redis, as any daemon wrote it).
      const deadline = performance.now() + 20 * 60_000;
      let records = await cluster.store.getMany(ids);
      while (records.some((r) => !r || !TERMINAL.has(r.status))) {
        if (performance.now() > deadline) throw new Error(`${k} daemons: runs still open after 20 minutes`);
        await sleep(100);
        records = await cluster.store.getMany(ids);
      }
      const wallS = (performance.now() - t0) / 1000;
      const byNode: Record<string, number> = {};
      for (const r of records) byNode[r!.node ?? '?'] = (byNode[r!.node ?? '?'] ?? 0) + 1;
      results.push({ daemons: k, rate: runs / wallS, byNode, failed: records.filter((r) => r!.status !== 'succeeded').length });
      console.error(`[scale-out] ${JSON.stringify(results[results.length - 1])} (${base} runs before)`);
    }
  } finally {
    for (const e of cluster.engines) {
      const d = e.docker as Docker;
      const left = await d.listContainers({ all: true, filters: { label: [`${LABEL}=scale-out`] } }).catch(() => []);
      await Promise.all(
        left.map((c) =>
          d
            .getContainer(c.Id)
            .remove({ force: true, v: true })
            .catch(() => undefined),
        ),
      );
    }
    await cluster.teardown({ downEngines: true });
  }
  const one = results.find((r) => r.daemons === 1)?.rate;
  return {
    lines: [
      `## scale-out: ${runs} trivial runs submitted to one daemon, taken by 1–${max} daemons on one Redis, each on its own engine`,
      '',
      row(['daemons', 'runs/s', 'vs 1 daemon', 'runs per node', 'not succeeded']),
      row(['---', '---', '---', '---', '---']),
      ...results.map((r) =>
        row([
          r.daemons,
          r.rate.toFixed(2),
          one ? `${(r.rate / one).toFixed(2)}×` : '',
          Object.entries(r.byNode)
            .map(([n, c]) => `${n}: ${c}`)
            .join(', '),
          r.failed,
        ]),
      ),
      '',
      'Two cores for all engines, daemons and Redis: more daemons add coordination, not capacity.',
    ],
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  scaleOut(numFlag('runs', 100), listFlag('daemons', '1,2,3')).then(
    (r) => {
      console.log(r.lines.join('\n'));
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
