/**
 * How long one trivial run takes from trigger to `succeeded`, against the floor: the raw
 * Docker API doing the same container work (create with the same limits, start, wait,
 * inspect, remove) with nothing around it. Both are measured in this one process, alternating, so
 * machine noise hits both alike; the ratio is the figure to compare across machines.
 *
 *   npm run bench            (or: node dist/bench/trigger-latency.js [runs])
 */
import Docker from 'dockerode';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/lib/logger.js';
import { startEmbeddedRedis } from '../src/lib/embedded-redis.js';
import { manualRequest } from '../src/triggers/manual.js';

const RUNS = Number(process.argv[2] ?? 20);
const IMAGE = 'runlet/busybox:local';
const LABEL = { 'runlet.managed': 'true', 'runlet.bench': 'trigger-latency' };

async function rawDocker(docker: Docker): Promise<number> {
  const t0 = performance.now();
  const c = await docker.createContainer({
    Image: IMAGE,
    Cmd: ['true'],
    Labels: LABEL,
    HostConfig: {
      Memory: 16 * 2 ** 20,
      MemorySwap: 16 * 2 ** 20,
      NanoCpus: 5e8,
      PidsLimit: 256,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
    },
  });
  await c.start();
  await c.wait();
  await c.inspect();
  await c.remove({ force: true });
  return performance.now() - t0;
}

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), p95: q(0.95), min: s[0], max: s[s.length - 1] };
}

async function main() {
  const docker = new Docker();
  const dir = mkdtempSync(join(tmpdir(), 'runlet-bench-'));
  const file = join(dir, 'runlet.yaml');
  const yaml = `tasks:\n  trivial: { image: ${IMAGE}, command: ["true"], memory: 16m, cpus: 0.5 }\n`;
  writeFileSync(file, yaml);
  const redis = await startEmbeddedRedis(join(dir, 'data'));
  const daemon = await startDaemon({
    config: parseConfig(yaml, file, {}),
    logger: createLogger({ level: 'warn' }),
    dataDir: join(dir, 'data'),
    node: 'bench',
    redisUrl: `unix://${redis.path}`,
    port: 0,
  });

  const runlet: number[] = [];
  const raw: number[] = [];
  // Warm both paths once (image cache, connections), then alternate.
  await rawDocker(docker);
  const warm = await daemon.submit(manualRequest('trivial', undefined));
  await daemon.events.once('run:finished', (e) => e.runId === warm.runId);
  for (let i = 0; i < RUNS; i++) {
    raw.push(await rawDocker(docker));
    const t0 = performance.now();
    const finished = daemon.events.once('run:finished', () => true, 60_000);
    const { runId } = await daemon.submit(manualRequest('trivial', undefined));
    const e = await finished;
    if (e.runId !== runId || e.status !== 'succeeded') throw new Error(`run ${runId} ended ${e.status}`);
    runlet.push(performance.now() - t0);
  }
  await daemon.stop();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });

  const r = stats(runlet);
  const d = stats(raw);
  const fmt = (x: number) => `${x.toFixed(0)} ms`;
  console.log(`trivial run, ${RUNS} runs each, ${new Date().toISOString()}`);
  console.log(
    `  raw Docker API (create+start+wait+inspect+rm)  median ${fmt(d.median)}  p95 ${fmt(d.p95)}  min ${fmt(d.min)}  max ${fmt(d.max)}`,
  );
  console.log(
    `  runlet trigger → succeeded (record written)  median ${fmt(r.median)}  p95 ${fmt(r.p95)}  min ${fmt(r.min)}  max ${fmt(r.max)}`,
  );
  console.log(
    `  ratio runlet / floor (median)                ${(r.median / d.median).toFixed(2)}x  (overhead ${fmt(r.median - d.median)})`,
  );
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
