/**
 * The soak of issue 13: three daemons on three Docker engines (engine-host.sh, each standing
 * for a host) and one Redis, under a steady mix of cron ticks, signed webhooks and BullMQ
 * jobs, while faults are dealt at random every minute or two: daemons killed (-9), stopped
 * and started (SIGTERM), frozen for 40 s (SIGSTOP), their engine restarted, a daemon and its
 * engine gone together for a while, and one Redis restart from its append-only file in the
 * middle. At the end the load stops, everything comes back, runs settle, and a table says
 * what was asked for, what ran, what was lost or ran twice, what containers were left, and
 * the longest a run waited for its retry. Every engine's running containers of the cluster
 * are sampled every 500 ms (test/helpers/cluster.ts, the sampler the fault tests use), so
 * "two containers of one run at once" is what the engines showed, not what runlet recorded.
 *
 *   npm run soak -- --minutes 30 --out soak.md
 *   node dist/bench/soak.js --minutes 3 [--out FILE] [--fault-every 60-120] [--rate 0.5] [--settle-cap 300]
 *
 * Opt-in, never part of `npm test`. Uses the engines d123, f12 and f123 (also used by
 * test/cluster.restarts.test.ts: do not run both at once). Ctrl-C tears everything down.
 */
import { Queue } from 'bullmq';
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { ticksBetween } from '../src/config/ticks.js';
import { keys } from '../src/runs/keys.js';
import { LABEL_CLUSTER } from '../src/runtime/labels.js';
import type { RunRecord, RunStatus } from '../src/runs/types.js';
import { engineHost, startCluster, upEngine, type Cluster, type ClusterNode } from '../test/helpers/cluster.js';

const IMAGE = 'runlet/busybox:local';
const ENGINES = ['d123', 'f12', 'f123'];
const CRON = '*/2 * * * * *';
const QUEUE = 'soak-jobs';
const OPEN: readonly RunStatus[] = ['queued', 'starting', 'running'];

interface Options {
  minutes: number;
  out: string;
  faultMinS: number;
  faultMaxS: number;
  /** Webhooks and jobs per second, each. */
  rate: number;
  settleCapS: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { minutes: 30, out: 'soak.md', faultMinS: 60, faultMaxS: 120, rate: 0.5, settleCapS: 300 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const num = () => {
      const n = Number(value);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number, not ${value}`);
      i++;
      return n;
    };
    if (flag === '--minutes') o.minutes = num();
    else if (flag === '--rate') o.rate = num();
    else if (flag === '--settle-cap') o.settleCapS = num();
    else if (flag === '--out') {
      if (!value) throw new Error('--out needs a file');
      o.out = value;
      i++;
    } else if (flag === '--fault-every') {
      const m = /^(\d+)-(\d+)$/.exec(value ?? '');
      if (!m || Number(m[1]) > Number(m[2])) throw new Error(`--fault-every needs MIN-MAX seconds, e.g. 60-120, not ${value}`);
      [o.faultMinS, o.faultMaxS] = [Number(m[1]), Number(m[2])];
      i++;
    } else throw new Error(`unknown option ${flag} (options: --minutes N, --out FILE, --fault-every MIN-MAX, --rate R, --settle-cap S)`);
  }
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = (min: number, max: number) => min + Math.random() * (max - min);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)];
const t0 = Date.now();
const clock = () => `+${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s`;
const say = (msg: string) => console.log(`${clock()} ${msg}`);

function config(secret: string): string {
  return `
defaults: { image: ${IMAGE}, memory: 16m, timeout: 30s }
# Keep every run of the soak: the table counts them all.
retention: { runs: 100000 }
tasks:
  tick:
    schedule: "${CRON}"
    concurrency: 4
    command: [sh, -c, 'sleep $((RANDOM % 4))']
  hook:
    concurrency: 6
    retries: { attempts: 3, delay: 5s, maxDelay: 30s }
    # A fifth of the attempts fail: retries are part of the load.
    command: [sh, -c, 'sleep $((RANDOM % 4)); test $((RANDOM % 100)) -ge 20']
    webhook: { secret: "${secret}", signature: standard-webhooks }
  job:
    concurrency: 6
    retries: { attempts: 2, backoff: fixed, delay: 3s }
    command: [sh, -c, 'sleep $((RANDOM % 4)); test $((RANDOM % 100)) -ge 20']
    queue: { name: ${QUEUE} }
`;
}

/** The soak's state, shared by the load, the faults and the report. */
class Soak {
  stopping = false;
  readonly hooks = new Map<string, { status?: number; tries: number }>();
  readonly jobs: string[] = [];
  jobErrors = 0;
  readonly faults: Array<{ at: number; kind: string; node: string; detail: string; steps?: string[]; recoveredAt?: number }> = [];
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    readonly cluster: Cluster,
    readonly opts: Options,
  ) {}

  track<T>(p: Promise<T>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** A node a sender would reach: any whose process is there (a frozen one too: it just does not answer). */
  liveNode(): ClusterNode | undefined {
    const up = this.cluster.nodes.filter((n) => n.running);
    return up.length ? pick(up) : undefined;
  }
}

/** Signed webhooks at a steady rate, each with an id of its own; a sender retries a failed delivery (same id) on another daemon. */
async function sendWebhooks(soak: Soak, secret: string): Promise<void> {
  const wh = new Webhook(secret);
  for (let n = 0; !soak.stopping; n++) {
    const id = `soak-hook-${n}`;
    const entry = { tries: 0 } as { status?: number; tries: number };
    soak.hooks.set(id, entry);
    soak.track(
      (async () => {
        const body = JSON.stringify({ hook: id });
        for (let attempt = 1; attempt <= 6; attempt++) {
          entry.tries = attempt;
          const node = soak.liveNode();
          if (node) {
            const at = new Date();
            try {
              const res = await fetch(`${await node.url()}/hooks/hook`, {
                method: 'POST',
                headers: {
                  'content-type': 'application/json',
                  'webhook-id': id,
                  'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
                  'webhook-signature': wh.sign(id, at, body),
                },
                body,
                signal: AbortSignal.timeout(5_000),
              });
              await res.arrayBuffer();
              entry.status = res.status;
              if (res.status === 202 || res.status === 200) return;
            } catch {
              // refused (the daemon is down) or no answer (frozen): deliver again, elsewhere
            }
          }
          await sleep(1_000 * attempt);
        }
      })(),
    );
    await sleep(1_000 / soak.opts.rate);
  }
}

/** A BullMQ producer adding jobs with ids of their own at a steady rate. */
async function produceJobs(soak: Soak, queue: Queue): Promise<void> {
  for (let n = 0; !soak.stopping; n++) {
    const id = `soak-job-${n}`;
    soak.track(
      queue.add('soak', { job: id }, { jobId: id }).then(
        () => void soak.jobs.push(id),
        () => void soak.jobErrors++,
      ),
    );
    await sleep(1_000 / soak.opts.rate);
  }
}

type FaultKind = 'kill -9' | 'SIGTERM + start' | 'SIGSTOP 40 s' | 'engine restart' | 'daemon kill -9 + engine down';
const FAULT_KINDS: readonly FaultKind[] = ['kill -9', 'SIGTERM + start', 'SIGSTOP 40 s', 'engine restart', 'daemon kill -9 + engine down'];

/** Starts a node's daemon again, trying a few times (its engine may still be coming back). */
async function bringBack(node: ClusterNode): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await node.start();
      return;
    } catch (err) {
      if (i === 5) throw err;
      say(`  ${node.node} did not start (${String(err).split('\n')[0]}); again in 5 s`);
      await sleep(5_000);
    }
  }
}

async function fault(soak: Soak, kind: FaultKind): Promise<void> {
  const node = pick(soak.cluster.nodes);
  const engine = node.engine.name;
  const entry: Soak['faults'][number] = { at: Date.now(), kind, node: node.node, detail: '', steps: [] };
  const record = (detail: string) => {
    entry.detail = detail;
    soak.faults.push(entry);
    say(`fault: ${kind} on ${node.node}${detail ? ` (${detail})` : ''}`);
  };
  /** How long each step of a recovery took (a slow stop or start is worth seeing). */
  const timed = async (step: string, p: Promise<unknown>) => {
    const t = Date.now();
    await p;
    entry.steps!.push(`${step} ${((Date.now() - t) / 1000).toFixed(1)} s`);
  };
  switch (kind) {
    case 'kill -9': {
      const down = Math.round(between(3_000, 8_000));
      record(`back after ${down} ms`);
      await node.stop('SIGKILL');
      await sleep(down);
      await timed('start', bringBack(node));
      break;
    }
    case 'SIGTERM + start': {
      record('');
      await timed('graceful stop', node.stop('SIGTERM'));
      await timed('start', bringBack(node));
      break;
    }
    case 'SIGSTOP 40 s': {
      record('');
      node.signal('SIGSTOP');
      await sleep(40_000);
      node.signal('SIGCONT');
      break;
    }
    case 'engine restart': {
      record(`engine ${engine}`);
      await timed('engine restart', engineHost('restart', engine));
      break;
    }
    case 'daemon kill -9 + engine down': {
      const down = Math.round(between(30_000, 60_000));
      record(`engine ${engine}, both back after ${down} ms`);
      await node.stop('SIGKILL');
      await engineHost('down', engine);
      await sleep(down);
      await timed('engine up', upEngine(engine, [IMAGE]));
      await timed('start', bringBack(node));
      break;
    }
  }
  entry.recoveredAt = Date.now();
  say(`  ${kind} on ${node.node}: recovered${entry.steps!.length ? ` (${entry.steps!.join(', ')})` : ''}`);
}

/** Faults one after another, every faultMin–faultMax s, each kind in turn (shuffled), until the load stops. */
async function dealFaults(soak: Soak): Promise<void> {
  let deck: FaultKind[] = [];
  for (;;) {
    const wait = between(soak.opts.faultMinS, soak.opts.faultMaxS) * 1_000;
    const until = Date.now() + wait;
    while (Date.now() < until) {
      if (soak.stopping) return;
      await sleep(Math.min(1_000, until - Date.now()));
    }
    if (soak.stopping) return;
    if (deck.length === 0) deck = [...FAULT_KINDS].sort(() => Math.random() - 0.5);
    const kind = deck.shift()!;
    // A recovery that fails is reported and the soak goes on: the table says what it cost.
    await fault(soak, kind).catch((err) => {
      soak.faults.push({ at: Date.now(), kind: `${kind}: recovery failed`, node: '', detail: String(err).split('\n')[0] });
      say(`  ${kind}: recovery failed: ${String(err).split('\n')[0]}`);
    });
  }
}

async function allRecords(cluster: Cluster): Promise<RunRecord[]> {
  const ids = await cluster.redisClient.zrange(keys.allRuns(), 0, -1);
  const out: RunRecord[] = [];
  for (let i = 0; i < ids.length; i += 500) for (const r of await cluster.store.getMany(ids.slice(i, i + 500))) if (r) out.push(r);
  return out;
}

/** What request a run stands for, from what it carries (not from its dedupe key, which is what could fail). */
function requestOf(r: RunRecord): string | undefined {
  if (r.task === 'tick') return r.scheduledAt !== undefined ? `tick:${r.scheduledAt}` : undefined;
  let p: unknown = r.payload;
  if (typeof p === 'string') {
    try {
      p = JSON.parse(p);
    } catch {
      return undefined;
    }
  }
  const o = (p ?? {}) as { hook?: string; job?: string };
  return r.task === 'hook' && o.hook ? `hook:${o.hook}` : r.task === 'job' && o.job ? `job:${o.job}` : undefined;
}

interface Column {
  requested: number;
  requestedNote: string;
  recorded: number;
  succeeded: number;
  failed: number;
  otherEnded: number;
  lost: number;
  twoRuns: number;
  twoContainers: number;
  retried: number;
  lostIds: string[];
  dupIds: string[];
  failedIds: string[];
}

function fmtMs(ms: number): string {
  return ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(1)} s`;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  say(`soak: ${opts.minutes} min, faults every ${opts.faultMinS}-${opts.faultMaxS} s, ${opts.rate}/s webhooks and jobs, cron "${CRON}"`);
  say(`starting engines ${ENGINES.join(', ')} and Redis`);
  const cluster = await startCluster({ yamlText: config(secret), engineNames: ENGINES, images: [IMAGE] });
  const queue = new Queue(QUEUE, { connection: { path: cluster.redis.path, maxRetriesPerRequest: null } });
  queue.on('error', () => undefined); // reconnects by itself (the Redis restart)
  const soak = new Soak(cluster, opts);

  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      soak.stopping = true;
      await queue.close().catch(() => undefined);
      await cluster.teardown();
    })());
  let interrupts = 0;
  const onSignal = (sig: string) => {
    if (++interrupts > 2) process.exit(130);
    say(interrupts === 1 ? `${sig}: tearing down (engines down, containers removed)...` : 'still tearing down; once more to exit at once');
    void cleanup().finally(() => {
      say('torn down: engines down, containers removed, Redis stopped');
      process.exit(130);
    });
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  try {
    await Promise.all(cluster.nodes.map((n) => n.start()));
    while (!cluster.clusterId()) await sleep(100);
    cluster.sampler.start(500);
    const loadStart = Date.now();
    say(`three daemons up (${cluster.nodes.map((n) => n.node).join(', ')}); load on for ${opts.minutes} min`);

    const hooks = sendWebhooks(soak, secret);
    const jobs = produceJobs(soak, queue);
    const faults = dealFaults(soak);
    const redisRestart = (async () => {
      await sleep((opts.minutes * 60_000) / 2);
      if (soak.stopping) return;
      say('fault: Redis restart (SIGTERM, down 5 s, back from its append-only file)');
      const entry: Soak['faults'][number] = { at: Date.now(), kind: 'Redis restart', node: 'redis', detail: 'down 5 s' };
      soak.faults.push(entry);
      await cluster.restartRedis(5_000);
      entry.recoveredAt = Date.now();
      say('  Redis restart: recovered');
    })();
    const progress = setInterval(() => {
      void cluster.redisClient
        .zcard(keys.allRuns())
        .then((n) =>
          say(`${n} runs recorded, ${soak.hooks.size} webhooks sent, ${soak.jobs.length} jobs added, ${soak.faults.length} faults`),
        )
        .catch(() => undefined);
    }, 30_000);

    await sleep(opts.minutes * 60_000);
    soak.stopping = true;
    // Stop the schedule cluster-wide: later ticks are `skipped` records, outside the window.
    let loadEnd = Date.now();
    for (const n of cluster.nodes.filter((x) => x.running)) {
      const res = await fetch(`${await n.url()}/api/tasks/tick/pause`, { method: 'POST', signal: AbortSignal.timeout(5_000) }).catch(
        () => undefined,
      );
      if (res?.ok) {
        loadEnd = Date.now();
        break;
      }
    }
    say('load stopped; waiting for the fault in progress, the last deliveries and the Redis restart');
    await Promise.all([hooks, jobs, faults, redisRestart]);
    await soak.drain();
    clearInterval(progress);

    // Settle: every run ends (retries included), up to the cap.
    const settleStart = Date.now();
    let open: RunRecord[] = [];
    for (;;) {
      open = (await allRecords(cluster)).filter((r) => OPEN.includes(r.status));
      if (open.length === 0 || Date.now() - settleStart > opts.settleCapS * 1_000) break;
      say(`settling: ${open.length} run(s) queued, starting or running`);
      await sleep(5_000);
    }
    const settleMs = Date.now() - settleStart;
    await sleep(2_000); // the last containers' removal after their outcome
    await cluster.sampler.stop();

    // Leaked: any container of the cluster on any engine, now that no run is open.
    const clusterId = cluster.clusterId()!;
    const leaked: string[] = [];
    for (const e of cluster.engines) {
      const list = await e.docker.listContainers({ all: true, filters: { label: [`${LABEL_CLUSTER}=${clusterId}`] } }).catch(() => []);
      for (const c of list) leaked.push(`${e.name}: ${c.Names.join(',')} ${c.State}${open.length ? ' (runs still open)' : ''}`);
    }

    const records = await allRecords(cluster);
    const report = analyse({ opts, cluster, soak, records, loadStart, loadEnd, settleMs, open, leaked });
    writeFileSync(opts.out, report);
    console.log(`\n${report}`);
    say(`report written to ${opts.out}`);
  } finally {
    say('tearing down');
    await cleanup();
    say('done: engines down, containers removed, Redis stopped');
  }
}

function analyse(a: {
  opts: Options;
  cluster: Cluster;
  soak: Soak;
  records: RunRecord[];
  loadStart: number;
  loadEnd: number;
  settleMs: number;
  open: RunRecord[];
  leaked: string[];
}): string {
  const { soak, records } = a;
  const byRequest = new Map<string, RunRecord[]>();
  for (const r of records) {
    const key = requestOf(r);
    if (key) byRequest.set(key, [...(byRequest.get(key) ?? []), r]);
  }
  const expectedTicks = ticksBetween({ schedule: CRON, timezone: 'UTC' }, a.loadStart, a.loadEnd, 1e6).ticks.map((t) => `tick:${t}`);
  const accepted = [...soak.hooks].filter(([, h]) => h.status === 202 || h.status === 200).map(([id]) => `hook:${id}`);
  const accepted202 = [...soak.hooks.values()].filter((h) => h.status === 202).length;
  const produced = soak.jobs.map((id) => `job:${id}`);

  const overlaps = new Set<string>();
  for (const s of a.cluster.sampler.samples) for (const [runId, cs] of s.runs) if (cs.length > 1) overlaps.add(runId);

  const column = (requested: string[], note: string): Column => {
    const c: Column = {
      requested: requested.length,
      requestedNote: note,
      recorded: 0,
      succeeded: 0,
      failed: 0,
      otherEnded: 0,
      lost: 0,
      twoRuns: 0,
      twoContainers: 0,
      retried: 0,
      lostIds: [],
      dupIds: [],
      failedIds: [],
    };
    for (const key of requested) {
      const runs = byRequest.get(key) ?? [];
      if (runs.length === 0) {
        c.lost++;
        c.lostIds.push(`${key}: no run`);
        continue;
      }
      c.recorded++;
      if (runs.length > 1) {
        c.twoRuns++;
        c.dupIds.push(`${key}: runs ${runs.map((r) => `${r.id} ${r.status}`).join(', ')}`);
      }
      const r = runs[0];
      if (runs.some((x) => overlaps.has(x.id))) c.twoContainers++;
      if ((r.attempt ?? 1) > 1) c.retried++;
      if (r.status === 'succeeded') c.succeeded++;
      else if (r.status === 'failed') {
        c.failed++;
        c.failedIds.push(
          `${key}: run ${r.id}: ${r.attempts.map((x) => `a${x.attempt} ${x.status}${x.reason ? ` (${x.reason})` : ''}`).join(', ')}`,
        );
      } else if (r.status === 'lost' || r.status === 'skipped' || OPEN.includes(r.status)) {
        c.lost++;
        c.lostIds.push(`${key}: run ${r.id} ${r.status}${r.reason ? ` (${r.reason})` : ''}`);
      } else c.otherEnded++;
    }
    return c;
  };
  const cols = [
    column(expectedTicks, `ticks of "${CRON}" in the window`),
    column(accepted, `accepted (${accepted202} answered 202)`),
    column(produced, 'added to the queue'),
  ];
  const total = (f: (c: Column) => number) => cols.reduce((s, c) => s + f(c), 0);

  // Runs nobody asked for in the window (a webhook whose sender gave up though its run was made, a tick outside it).
  const requestedKeys = new Set([...expectedTicks, ...accepted, ...produced]);
  const unasked = records.filter((r) => {
    const k = requestOf(r);
    return k && !requestedKeys.has(k) && !(r.task === 'tick' && (r.scheduledAt! <= a.loadStart || r.scheduledAt! > a.loadEnd));
  });

  // The longest wait for a retry, from the run records' attempts: from attempt n's first
  // recorded end (an attempt found lost may get its real outcome later, a second entry) to
  // attempt n+1's start; and from attempt n's start, which for a dead host's run is about when
  // it went out of reach.
  let longest = { ms: 0, fromStartMs: 0, run: '', after: '' };
  for (const r of records)
    for (const next of r.attempts) {
      const prev = r.attempts.filter((x) => x.attempt === next.attempt - 1 && x.finishedAt !== undefined);
      if (prev.length === 0 || next.startedAt === undefined) continue;
      const first = prev.reduce((x, y) => (y.finishedAt! < x.finishedAt! ? y : x));
      const ms = next.startedAt - first.finishedAt!;
      if (ms > longest.ms)
        longest = {
          ms,
          fromStartMs: first.startedAt !== undefined ? next.startedAt - first.startedAt : NaN,
          run: r.id,
          after: `attempt ${first.attempt} ${first.status}${first.reason ? `: ${first.reason}` : ''}`,
        };
    }

  const faultCounts = new Map<string, number>();
  for (const f of soak.faults) faultCounts.set(f.kind, (faultCounts.get(f.kind) ?? 0) + 1);
  const samples = a.cluster.sampler.samples.length;
  const unreachable = a.cluster.sampler.unreachable.length;

  const row = (label: string, f: (c: Column) => number | string, sum = true) =>
    `| ${label} | ${cols.map((c) => String(f(c))).join(' | ')} | ${sum ? String(total((c) => Number(f(c)))) : ''} |`;
  const lines = [
    `## Soak: ${a.opts.minutes} min, three daemons on three engines, one Redis`,
    '',
    `${new Date(a.loadStart).toISOString()}, \`node dist/bench/soak.js --minutes ${a.opts.minutes}${a.opts.faultMinS !== 60 || a.opts.faultMaxS !== 120 ? ` --fault-every ${a.opts.faultMinS}-${a.opts.faultMaxS}` : ''}${a.opts.rate !== 0.5 ? ` --rate ${a.opts.rate}` : ''}\``,
    `(cron \`${CRON}\`, ${a.opts.rate}/s signed webhooks and ${a.opts.rate}/s BullMQ jobs; containers sleep 0–3 s, a fifth of webhook and job attempts fail and are retried).`,
    '',
    '| | cron ticks | webhooks | queue jobs | all |',
    '|---|---|---|---|---|',
    row('requested', (c) => c.requested),
    `| (what counts as requested) | ${cols.map((c) => c.requestedNote).join(' | ')} | |`,
    row('recorded (a run for the request)', (c) => c.recorded),
    row('ran: succeeded', (c) => c.succeeded),
    row('ran: failed (after its retries)', (c) => c.failed),
    row('ran: other end (timed out, cancelled, OOM)', (c) => c.otherEnded),
    row('**lost** (no run, or ended `lost`/`skipped`, or still open after settling)', (c) => c.lost),
    row('**duplicated**: two runs for one request', (c) => c.twoRuns),
    row('**duplicated**: two containers of one run at once (samples)', (c) => c.twoContainers),
    row('runs retried (more than one attempt)', (c) => c.retried),
    '',
    `- **Leaked containers** (any container of the cluster on any engine after settling): **${a.leaked.length}**`,
    `- **Longest wait for a retry** (an attempt's recorded end to the next attempt's start): **${longest.run ? `${fmtMs(longest.ms)}** (run ${longest.run}, after ${longest.after}${Number.isFinite(longest.fromStartMs) ? `; ${fmtMs(longest.fromStartMs)} from that attempt's start` : '; that attempt never started'})` : 'none**'}`,
    `- Faults: ${[...faultCounts].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}`,
    `- Settling took ${fmtMs(a.settleMs)}${a.open.length ? `, and ${a.open.length} run(s) were still open at the cap (${a.opts.settleCapS} s)` : ''}; ${samples} samples of every engine, ${unreachable} engine answers missed (engine down or restarting)`,
    `- Runs made for no request counted above (a webhook whose sender gave up after its run was made): ${unasked.length}; webhooks never accepted: ${soak.hooks.size - accepted.length} of ${soak.hooks.size} sent; job adds that failed: ${soak.jobErrors}`,
  ];
  const details = [
    ...cols.flatMap((c, i) => [
      ...c.lostIds.slice(0, 20).map((x) => `- lost (${['cron', 'webhook', 'queue'][i]}): ${x}`),
      ...c.dupIds.slice(0, 20).map((x) => `- two runs (${['cron', 'webhook', 'queue'][i]}): ${x}`),
      ...c.failedIds.slice(0, 20).map((x) => `- failed (${['cron', 'webhook', 'queue'][i]}): ${x}`),
    ]),
    ...[...overlaps].slice(0, 20).map((id) => `- two containers at once: run ${id}`),
    ...a.leaked.slice(0, 20).map((x) => `- leaked: ${x}`),
    ...soak.faults.map(
      (f) =>
        `- fault at +${((f.at - a.loadStart) / 1000).toFixed(0)} s: ${f.kind} on ${f.node}${f.detail ? ` (${f.detail})` : ''}` +
        (f.recoveredAt
          ? `; recovered after ${((f.recoveredAt - f.at) / 1000).toFixed(1)} s${f.steps?.length ? ` (${f.steps.join(', ')})` : ''}`
          : ''),
    ),
  ];
  return [...lines, '', '<details><summary>Details (first 20 of each)</summary>', '', ...details, '', '</details>', ''].join('\n');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
