/**
 * Size and cold start of the example task images (`runlet/task-*:local`), against two floors
 * measured in the same run: `runlet/busybox:local` running `echo hi` (the engine's own cost
 * of a container) and `runlet/node:local` running `node -e "console.log(1)"` (that plus
 * starting node, which every task image is built on).
 *
 *   node dist/bench/task-cold-start.js [runs=10]
 *
 * Cold start = from the create request to the first byte the container writes (stdout or
 * stderr), seen on an attach made before start; then the container is waited for and removed.
 * Images are measured round-robin (each round runs every image once), so machine noise hits
 * all alike; one untimed warm-up round comes first. "Cold" means a new container, not an
 * empty image cache: the images are local, as they are for runlet.
 *
 * The tasks get no settings, so each one stops at its first required setting with one line,
 * "<VAR> is not set: …", exit code 2. That still times what a real run pays before it does
 * any work: the engine, node, and loading the task's whole bundle (AWS SDK, MongoDB driver,
 * …, whatever it imports) and running its main function up to its first check.
 */
import Docker from 'dockerode';
import { PassThrough } from 'node:stream';

const RUNS = Number(process.argv[2] ?? 10);
const LABELS = { 'runlet.managed': 'true', 'runlet.bench': 'task-cold-start' };
const MiB = 1024 ** 2;

interface Subject {
  label: string;
  image: string;
  cmd?: string[];
  times: number[];
  firstLine?: string;
  exitCode?: number;
}

async function coldStart(docker: Docker, s: Subject): Promise<number> {
  const t0 = performance.now();
  const c = await docker.createContainer({
    Image: s.image,
    Cmd: s.cmd,
    Labels: LABELS,
    // The limits and hardening runlet gives a run (256m is its default memory).
    HostConfig: {
      Memory: 256 * MiB,
      MemorySwap: 256 * MiB,
      NanoCpus: 5e8,
      PidsLimit: 256,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
    },
  });
  try {
    const stream = (await c.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
    const out = new PassThrough();
    let text = '';
    const first = new Promise<number>((resolve, reject) => {
      out.on('data', (b: Buffer) => {
        if (text === '') resolve(performance.now() - t0);
        text += b.toString();
      });
      stream.on('end', () => reject(new Error(`${s.image} ended without any output`)));
    });
    first.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
    docker.modem.demuxStream(stream, out, out);
    await c.start();
    const ms = await first;
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    s.firstLine = text.split('\n')[0].slice(0, 90);
    s.exitCode = StatusCode;
    return ms;
  } finally {
    await c.remove({ force: true }).catch(() => undefined);
  }
}

/** Containers of this bench left by an earlier, interrupted run. */
async function removeLeftovers(docker: Docker): Promise<void> {
  const left = await docker.listContainers({ all: true, filters: { label: ['runlet.bench=task-cold-start'] } });
  await Promise.all(
    left.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const docker = new Docker();
  await removeLeftovers(docker);
  process.on('SIGINT', () => void removeLeftovers(docker).finally(() => process.exit(130)));

  const tasks = (await docker.listImages({ filters: { reference: ['runlet/task-*:local'] } }))
    .flatMap((i) => i.RepoTags ?? [])
    .filter((t) => /^runlet\/task-[^:]+:local$/.test(t))
    .sort();
  if (tasks.length === 0) throw new Error('no runlet/task-*:local image: run bash scripts/build-images.sh first');
  const subjects: Subject[] = [
    { label: 'floor: busybox `echo hi`', image: 'runlet/busybox:local', cmd: ['echo', 'hi'], times: [] },
    { label: 'floor: node `console.log(1)`', image: 'runlet/node:local', cmd: ['node', '-e', 'console.log(1)'], times: [] },
    ...tasks.map((image) => ({ label: image.replace(/^runlet\/task-/, '').replace(/:local$/, ''), image, times: [] })),
  ];
  const sizes = new Map<string, number>();
  for (const s of subjects) sizes.set(s.image, (await docker.getImage(s.image).inspect()).Size);
  const nodeSize = sizes.get('runlet/node:local')!;

  for (const s of subjects) await coldStart(docker, s); // warm-up, not counted
  for (let i = 0; i < RUNS; i++) for (const s of subjects) s.times.push(await coldStart(docker, s));
  await removeLeftovers(docker);

  const busyboxMedian = median(subjects[0].times);
  const nodeMedian = median(subjects[1].times);
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const signed = (x: number) => `${x < 0 ? '−' : '+'}${ms(Math.abs(x))}`;
  const rows = subjects.map((s) => {
    const m = median(s.times);
    const size = sizes.get(s.image)!;
    const isTask = s.image.startsWith('runlet/task-');
    return [
      s.label,
      mb(size),
      isTask ? `+${((size - nodeSize) / 1e6).toFixed(2)} MB` : '',
      ms(m),
      `${ms(Math.min(...s.times))}–${ms(Math.max(...s.times))}`,
      isTask ? signed(m - nodeMedian) : s === subjects[1] ? `${signed(m - busyboxMedian)} over busybox` : '',
      `${s.exitCode}: ${s.firstLine ?? ''}`,
    ];
  });
  const head = ['image', 'size', 'over node base', 'cold start (median)', 'min–max', 'over node floor', 'exit: first line'];
  console.log(`task image size and cold start (create → first output byte), ${RUNS} runs each, ${new Date().toISOString()}`);
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  process.exit(0);
}

main().catch(async (err) => {
  console.error(err);
  await removeLeftovers(new Docker()).catch(() => undefined);
  process.exit(1);
});
