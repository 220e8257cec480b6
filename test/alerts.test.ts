import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

interface Received {
  readonly path: string;
  readonly at: number;
  readonly body: {
    text: string;
    event: string;
    events: string[];
    task: string;
    run?: { id: string; status: string; exitCode: number | null; dead: boolean };
  };
}

/** A real HTTP receiver: records every POST; /flaky answers 500 twice then 200, /slow answers after 10 s. */
async function startReceiver(): Promise<{ url: string; got: Received[]; hits: Map<string, number>; close(): Promise<void> }> {
  const got: Received[] = [];
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const path = req.url ?? '/';
      hits.set(path, (hits.get(path) ?? 0) + 1);
      if (path === '/flaky' && hits.get(path)! <= 2) return void res.writeHead(500).end('not now');
      const answer = () => {
        got.push({ path, at: Date.now(), body: JSON.parse(text) });
        res.writeHead(200).end('ok');
      };
      if (path === '/slow') setTimeout(answer, 10_000).unref();
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    got,
    hits,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function yaml(url: string): string {
  return `
defaults: { image: runlet/busybox:local, timeout: 30s }
tasks:
  broken: { command: [sh, -c, 'exit 3'] }
  fine: { command: [sh, -c, 'true'] }
  other: { command: [sh, -c, 'exit 4'] }
  burst-fast: { command: [sh, -c, 'exit 5'], concurrency: 4 }
  burst-slow: { command: [sh, -c, 'exit 5'], concurrency: 4 }
alerts:
  - url: ${url}/main
    tasks: [broken, fine]
  - url: ${url}/other-only
    tasks: [other]
    on: [failed]
  - url: ${url}/success
    on: [succeeded]
    tasks: [fine]
  - url: ${url}/flaky
    on: [failed]
    tasks: [broken]
    timeout: 2s
  - url: ${url}/fast
    tasks: [burst-fast]
  - url: ${url}/slow
    tasks: [burst-slow]
`;
}

describe('alerts from a running daemon to a real HTTP receiver', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let daemon: TestDaemon;
  beforeAll(async () => {
    redis = await startTestRedis();
    receiver = await startReceiver();
    daemon = await startTestDaemon({ config: configFrom(yaml(receiver.url)), redisUrl: redis.url });
  });
  afterAll(async () => {
    await daemon?.stop();
    if (daemon) await removeClusterContainers(daemon.identity.clusterId);
    await receiver?.close();
    await redis?.stopAndClean();
  });

  const run = async (task: string, key: string) =>
    (await daemon.submit({ task, trigger: 'manual', dedupeKey: `${task}:manual:${key}` })).runId;

  it('a failed run gives exactly one alert per matching rule; a succeeded one none (unless on: [succeeded]); the task filter holds', async () => {
    const failed = await run('broken', 'f1');
    const ok = await run('fine', 'ok1');
    expect((await daemon.waitForEnd(failed)).status).toBe('failed');
    expect((await daemon.waitForEnd(ok)).status).toBe('succeeded');

    const main = await until('the failed run alert', () => receiver.got.find((r) => r.path === '/main'));
    // Dead (no attempt left) and failed are both in the default on:, one alert stands for both.
    expect(main.body).toMatchObject({
      event: 'dead',
      events: ['failed', 'dead'],
      task: 'broken',
      run: { id: failed, status: 'failed', exitCode: 3, dead: true },
    });
    expect(main.body.text).toContain(`broken run ${failed} failed (exit 3)`);
    expect(main.body.text).toMatch(/^:skull: runlet: /);
    const success = await until('the succeeded-run alert', () => receiver.got.find((r) => r.path === '/success'));
    expect(success.body).toMatchObject({ event: 'succeeded', run: { id: ok } });

    await pause(2_000);
    expect(receiver.got.filter((r) => r.path === '/main')).toHaveLength(1);
    expect(receiver.got.filter((r) => r.path === '/success')).toHaveLength(1);
    // other-only filters on task `other`; nothing of broken or fine reaches it.
    expect(receiver.hits.get('/other-only')).toBeUndefined();

    const other = await run('other', 'o1');
    await daemon.waitForEnd(other);
    const o = await until('the filtered rule alert', () => receiver.got.find((r) => r.path === '/other-only'));
    expect(o.body).toMatchObject({ event: 'failed', events: ['failed'], task: 'other', run: { id: other, exitCode: 4 } });
    expect(receiver.got.filter((r) => r.path === '/main' && r.body.run?.id === other)).toHaveLength(0);
  });

  it('a receiver answering 500 twice then 200 gets the alert on the third try, once', async () => {
    const flaky = await until('the flaky receiver alert', () => receiver.got.find((r) => r.path === '/flaky'));
    expect(receiver.hits.get('/flaky')).toBe(3);
    expect(flaky.body.event).toBe('failed');
    // The receiver records the request before the daemon has read its answer and logged it.
    const sent = await until('the alert sent log line', () => daemon.logs.lines.find((l) => l.msg === 'alert sent' && l.rule === 3));
    expect(sent).toMatchObject({ attempts: 3 });
    expect(daemon.logs.lines.filter((l) => l.msg === 'alert delivery failed; retrying' && l.rule === 3)).toHaveLength(2);
    // The receiver's URL is never logged (a Slack webhook URL is a secret): only its host.
    expect(JSON.stringify(daemon.logs.lines)).not.toContain('/flaky');
  });

  it('a receiver that answers only after 10 s does not slow runs down (compared with a fast one)', async () => {
    const burst = async (task: string, tag: string): Promise<number> => {
      const start = Date.now();
      const ids = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => run(task, `${tag}-${i}`)));
      await Promise.all(ids.map((id) => daemon.waitForEnd(id)));
      return Date.now() - start;
    };
    await burst('burst-fast', 'warm');
    const fast = await burst('burst-fast', 'a');
    const slow = await burst('burst-slow', 'b');
    const fastAgain = await burst('burst-fast', 'c');
    // Ratio against the better of two baselines: timing is noisy, never absolute.
    expect(slow / Math.max(fast, fastAgain)).toBeLessThan(1.5);
    // Meanwhile the slow receiver's alerts wait in their own lane; the fast one's all arrive.
    await until('the fast alerts', () => receiver.got.filter((r) => r.path === '/fast').length >= 18 || undefined);
  });
});

describe('alerts: two daemons on one Redis', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const daemons: TestDaemon[] = [];
  beforeAll(async () => {
    redis = await startTestRedis();
    receiver = await startReceiver();
    const config = configFrom(`
defaults: { image: runlet/busybox:local, timeout: 30s }
tasks:
  broken: { command: [sh, -c, 'exit 3'], concurrency: 4 }
alerts:
  - url: ${receiver.url}/main
`);
    for (const node of ['node-a', 'node-b']) daemons.push(await startTestDaemon({ config, redisUrl: redis.url, node }));
  });
  afterAll(async () => {
    for (const d of daemons) await d.stop();
    if (daemons[0]) await removeClusterContainers(daemons[0].identity.clusterId);
    await receiver?.close();
    await redis?.stopAndClean();
  });

  it('still one alert per failed run, whichever daemon runs it or reads its end', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++)
      ids.push((await daemons[i % 2]!.submit({ task: 'broken', trigger: 'manual', dedupeKey: `broken:manual:two-${i}` })).runId);
    for (const id of ids) await daemons[0]!.waitForEnd(id);
    await until('six alerts', () => receiver.got.length >= 6 || undefined);
    await pause(2_000);
    expect(receiver.got.map((r) => r.body.run!.id).sort()).toEqual([...ids].sort());
  });
});
