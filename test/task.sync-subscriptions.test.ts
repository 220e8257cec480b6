import { createServer, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { hostForContainers, startTcpRedis } from './helpers/host.js';
import { startTestRedis } from './helpers/redis.js';

// tasks/sync-subscriptions end to end: its image run by a real daemon (a manual run)
// against a TCP Redis of subscriptions and this file's own fake App Store and Google Play
// APIs, which answer in the documented shapes, throttle and fail on cue, and note the
// time of every request they receive.
const APPSTORE_RPS = 5;
const PLAY_RPS = 4;
const MAX_ATTEMPTS = 3;
const DAY = 24 * 3600_000;
const RECHECK_MIN = 15 * 60_000;
const PKG = 'com.example.app';

const ENV = {
  SUBSCRIPTIONS_REDIS_URL: '"${SUBS_REDIS}"',
  APPSTORE_URL: '"${FAKE_STORES}"',
  PLAY_URL: '"${FAKE_STORES}"',
  PLAY_PACKAGE: PKG,
  APPSTORE_TOKEN: 'appstore-jwt',
  PLAY_TOKEN: 'play-oauth',
  APPSTORE_RPS: APPSTORE_RPS,
  PLAY_RPS: PLAY_RPS,
  MAX_ATTEMPTS: MAX_ATTEMPTS,
  BACKOFF_BASE_MS: 100,
  BACKOFF_MAX_MS: 400,
};
const env = (extra: Record<string, number>) =>
  `{ ${Object.entries({ ...ENV, ...extra })
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')} }`;
const YAML = `
defaults: { memory: 128m, timeout: 60s }
tasks:
  sync-subscriptions:
    image: runlet/task-sync-subscriptions:local
    env: ${env({ BATCH_SIZE: 5, MAX_PAGES: 20 })}
  sync-subscriptions-one-page:
    image: runlet/task-sync-subscriptions:local
    env: ${env({ BATCH_SIZE: 2, MAX_PAGES: 1 })}
`;

/** What the fake store says about one transaction or token: each request takes the next answer, the last one repeats. */
type Answer = { status: number; retryAfter?: string } | { ok: { appstore?: number; play?: string; expiresAt: number } };
interface Request {
  provider: 'appstore' | 'play';
  key: string;
  at: number;
  status: number;
  auth?: string;
}

const script = new Map<string, Answer[]>();
const seen: Request[] = [];

function startFakeStores(): Promise<Server> {
  const server = createServer((req, res) => {
    const at = performance.now();
    const url = req.url ?? '';
    const apple = /^\/inApps\/v1\/subscriptions\/([^/?]+)$/.exec(url);
    const google = new RegExp(`^/androidpublisher/v3/applications/${PKG}/purchases/subscriptionsv2/tokens/([^/?]+)$`).exec(url);
    const provider = apple ? 'appstore' : google ? 'play' : undefined;
    const key = decodeURIComponent((apple ?? google)?.[1] ?? '');
    const answers = script.get(key);
    const answer = answers && answers.length > 1 ? answers.shift()! : answers?.[0];
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      if (provider) seen.push({ provider, key, at, status, auth: req.headers.authorization });
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body === undefined ? '' : JSON.stringify(body));
    };
    if (!provider || !answer) return send(404, { errorCode: 4040010, errorMessage: 'Transaction id not found.' });
    if (!('ok' in answer)) return send(answer.status, {}, answer.retryAfter ? { 'retry-after': answer.retryAfter } : {});
    if (provider === 'appstore') {
      // The real signedTransactionInfo is a JWS; the task also takes plain JSON, which this fake sends.
      const info = JSON.stringify({ originalTransactionId: key, productId: 'pro.monthly', expiresDate: answer.ok.expiresAt });
      const other = { originalTransactionId: 'someone-else', status: 2, signedTransactionInfo: '{}' };
      return send(200, {
        environment: 'Sandbox',
        bundleId: PKG,
        data: [
          {
            subscriptionGroupIdentifier: 'g1',
            lastTransactions: [other, { originalTransactionId: key, status: answer.ok.appstore, signedTransactionInfo: info }],
          },
        ],
      });
    }
    send(200, {
      kind: 'androidpublisher#subscriptionPurchaseV2',
      subscriptionState: answer.ok.play,
      lineItems: [{ productId: 'pro', expiryTime: new Date(answer.ok.expiresAt).toISOString() }],
    });
  });
  return new Promise((resolve) => server.listen(0, '0.0.0.0', () => resolve(server)));
}

let runletRedis: Awaited<ReturnType<typeof startTestRedis>>;
let subs: Awaited<ReturnType<typeof startTcpRedis>>;
let stores: Server;
let daemon: TestDaemon;

beforeAll(async () => {
  [runletRedis, subs, stores] = await Promise.all([startTestRedis(), startTcpRedis(), startFakeStores()]);
  const storesUrl = `http://${await hostForContainers()}:${(stores.address() as { port: number }).port}`;
  const config = configFrom(YAML, { SUBS_REDIS: subs.urlForContainers, FAKE_STORES: storesUrl });
  daemon = await startTestDaemon({ config, redisUrl: runletRedis.url });
});
afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await Promise.all([runletRedis?.stopAndClean(), subs?.stop(), new Promise((r) => stores?.close(r))]);
});

const now = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();

/** One subscription: what Redis holds before the run and what the store will answer. */
interface Seed {
  id: string;
  provider: 'appstore' | 'play';
  status: string;
  expiresAt: number;
  answers: Answer[];
  dueAt?: number;
}

async function seed(list: Seed[]): Promise<void> {
  const m = subs.client.multi();
  for (const s of list) {
    const ref = s.provider === 'appstore' ? { originalTransactionId: `tx-${s.id}` } : { purchaseToken: `tok-${s.id}` };
    m.hset(`sub:${s.id}`, {
      userId: `user-${s.id}`,
      provider: s.provider,
      productId: 'pro.monthly',
      ...ref,
      status: s.status,
      expiresAt: iso(s.expiresAt),
    });
    m.zadd('subs:due', s.dueAt ?? now - 60_000, s.id);
    script.set(s.provider === 'appstore' ? `tx-${s.id}` : `tok-${s.id}`, [...s.answers]);
  }
  await m.exec();
}

async function manualRun(task: string) {
  const res = await fetch(`${daemon.url}/api/tasks/${task}/runs`, { method: 'POST' });
  expect(res.status).toBe(202);
  return daemon.waitForEnd(((await res.json()) as { id: string }).id);
}

const sub = (id: string) => subs.client.hgetall(`sub:${id}`);
const score = async (id: string) => Number(await subs.client.zscore('subs:due', id));
const requestsFor = (key: string) => seen.filter((r) => r.key === key);

/** Most requests the server received in any window of `windowMs` (half-open, starting at a request). */
function busiestWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (j < t.length && t[j]! < t[i]! + windowMs) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

describe('sync-subscriptions, one manual run', () => {
  const H = 3600_000;
  const active = (id: string, provider: 'appstore' | 'play', expiresAt = now + 2 * H): Seed => ({
    id,
    provider,
    status: 'active',
    expiresAt,
    answers: [{ ok: provider === 'appstore' ? { appstore: 1, expiresAt } : { play: 'SUBSCRIPTION_STATE_ACTIVE', expiresAt } }],
  });
  const seeds: Seed[] = [
    ...['as-1', 'as-8', 'as-9', 'as-10', 'as-11', 'as-12'].map((id) => active(id, 'appstore')),
    { id: 'as-2', provider: 'appstore', status: 'active', expiresAt: now - DAY, answers: [{ ok: { appstore: 2, expiresAt: now - DAY } }] },
    {
      id: 'as-3',
      provider: 'appstore',
      status: 'active',
      expiresAt: now - H,
      answers: [{ ok: { appstore: 1, expiresAt: now + 30 * DAY } }],
    },
    {
      id: 'as-4',
      provider: 'appstore',
      status: 'active',
      expiresAt: now - H,
      answers: [{ status: 429, retryAfter: '1' }, { ok: { appstore: 4, expiresAt: now + 3 * H } }],
    },
    {
      id: 'as-5',
      provider: 'appstore',
      status: 'billing_retry',
      expiresAt: now - H,
      answers: [{ status: 503 }, { ok: { appstore: 1, expiresAt: now + 5 * H } }],
    },
    { id: 'as-6', provider: 'appstore', status: 'active', expiresAt: now + H, answers: [{ status: 503 }] },
    { id: 'as-7', provider: 'appstore', status: 'active', expiresAt: now + H, answers: [] },
    ...['pl-5', 'pl-6', 'pl-7', 'pl-8', 'pl-9', 'pl-10'].map((id) => active(id, 'play')),
    {
      id: 'pl-1',
      provider: 'play',
      status: 'active',
      expiresAt: now + 3 * DAY,
      answers: [{ ok: { play: 'SUBSCRIPTION_STATE_CANCELED', expiresAt: now + 3 * DAY } }],
    },
    {
      id: 'pl-2',
      provider: 'play',
      status: 'active',
      expiresAt: now + 2 * H,
      answers: [{ status: 429, retryAfter: '1' }, { ok: { play: 'SUBSCRIPTION_STATE_ACTIVE', expiresAt: now + 2 * H } }],
    },
    {
      id: 'pl-3',
      provider: 'play',
      status: 'active',
      expiresAt: now + 2 * H,
      answers: [{ status: 503 }, { status: 502 }, { ok: { play: 'SUBSCRIPTION_STATE_ACTIVE', expiresAt: now + 2 * H } }],
    },
    {
      id: 'pl-4',
      provider: 'play',
      status: 'active',
      expiresAt: now - H,
      answers: [{ ok: { play: 'SUBSCRIPTION_STATE_EXPIRED', expiresAt: now - H } }],
    },
    // Not due for an hour: this run leaves it alone.
    { ...active('as-later', 'appstore'), dueAt: now + H },
  ];
  let run: Awaited<ReturnType<typeof manualRun>>;

  beforeAll(async () => {
    await seed(seeds);
    // An index entry whose subscription was deleted: dropped, not counted.
    await subs.client.zadd('subs:due', now - 120_000, 'deleted-one');
    run = await manualRun('sync-subscriptions');
  });

  it('succeeds with the counts: checked, updated, unchanged, failed, throttled', () => {
    expect(run.status, `${run.reason}\n${run.logTail}`).toBe('succeeded');
    // updated: as-2 expired, as-3 renewed, as-4 grace, as-5 recovered, pl-1 canceled, pl-4 expired.
    expect(JSON.parse(run.output!)).toEqual({ checked: 22, updated: 6, unchanged: 14, failed: 2, throttled: 2 });
  });

  it("saves each store's status and expiry, and reschedules the next check from it", async () => {
    const checked = async (id: string) => {
      const h = await sub(id);
      return { h, checkedAt: Date.parse(h.checkedAt!), next: await score(id) };
    };
    const as2 = await checked('as-2');
    expect(as2.h).toMatchObject({ status: 'expired', expiresAt: iso(now - DAY) });
    expect(as2.next).toBe(as2.checkedAt + RECHECK_MIN); // expiry passed: not before the minimum
    const as3 = await checked('as-3');
    expect(as3.h).toMatchObject({ status: 'active', expiresAt: iso(now + 30 * DAY) });
    expect(as3.next).toBe(as3.checkedAt + DAY); // far expiry: at least daily
    const as4 = await checked('as-4');
    expect(as4.h).toMatchObject({ status: 'grace', expiresAt: iso(now + 3 * 3600_000) });
    expect(as4.next).toBe(now + 3 * 3600_000); // at the expiry
    expect((await sub('as-5')).status).toBe('active');
    expect(await sub('pl-1')).toMatchObject({ status: 'canceled', expiresAt: iso(now + 3 * DAY) });
    expect((await sub('pl-4')).status).toBe('expired');
    const as1 = await checked('as-1');
    expect(as1.h).toMatchObject({ status: 'active', expiresAt: iso(now + 2 * 3600_000) });
    expect(as1.checkedAt).toBeGreaterThan(now);
    for (const s of seeds.filter((x) => x.id !== 'as-later' && x.id !== 'as-6' && x.id !== 'as-7'))
      expect(await score(s.id), s.id).toBeGreaterThan(Date.now());
  });

  it('a lookup that keeps failing keeps the old data, notes why, and is tried again later', async () => {
    const as6 = await sub('as-6');
    expect(as6).toMatchObject({ status: 'active', expiresAt: iso(now + 3600_000) });
    expect(as6.lastError).toBe(`gave up after ${MAX_ATTEMPTS} attempts: appstore answered 503`);
    expect(as6).not.toHaveProperty('checkedAt');
    expect(await score('as-6')).toBeGreaterThan(Date.parse(as6.lastErrorAt!) + RECHECK_MIN - 1000);
    expect((await sub('as-7')).lastError).toBe('appstore answered 404');
  });

  it('the server saw the retries: 429 after its Retry-After, 5xx again until it answered or the attempts ran out, 4xx once', () => {
    const statuses = (key: string) => requestsFor(key).map((r) => r.status);
    expect(statuses('tx-as-4')).toEqual([429, 200]);
    expect(statuses('tok-pl-2')).toEqual([429, 200]);
    // Retry-After: 1 is honoured. The task waits from the moment the 429 reached it, which is
    // after the server noted the request, so no allowance for the network is needed.
    for (const key of ['tx-as-4', 'tok-pl-2']) {
      const [first, retry] = requestsFor(key);
      expect(retry!.at - first!.at, key).toBeGreaterThanOrEqual(1000);
    }
    // A 429 is about the account: the whole provider waited, not just the one lookup. The
    // server may still see requests that were on their way when it answered 429 (up to the
    // other RPS - 1 slots), but nothing sent after.
    for (const [provider, key, rps] of [
      ['appstore', 'tx-as-4', APPSTORE_RPS],
      ['play', 'tok-pl-2', PLAY_RPS],
    ] as const) {
      const throttledAt = requestsFor(key)[0]!.at;
      const during = seen.filter((r) => r.provider === provider && r.at > throttledAt && r.at < throttledAt + 1000);
      expect(during.length, JSON.stringify(during)).toBeLessThanOrEqual(rps - 1);
    }
    expect(statuses('tx-as-5')).toEqual([503, 200]);
    expect(statuses('tok-pl-3')).toEqual([503, 502, 200]);
    expect(statuses('tx-as-6')).toEqual(Array(MAX_ATTEMPTS).fill(503));
    expect(statuses('tx-as-7')).toEqual([404]);
    expect(requestsFor('tx-as-later')).toEqual([]);
    expect(seen.filter((r) => r.provider === 'appstore').every((r) => r.auth === 'Bearer appstore-jwt')).toBe(true);
    expect(seen.filter((r) => r.provider === 'play').every((r) => r.auth === 'Bearer play-oauth')).toBe(true);
  });

  it('the rate limit held per provider, retries included, as measured on the server', () => {
    for (const [provider, rps] of [
      ['appstore', APPSTORE_RPS],
      ['play', PLAY_RPS],
    ] as const) {
      const times = seen.filter((r) => r.provider === provider).map((r) => r.at);
      // Strict: the task frees a slot a full second after the answer, which the server sent
      // after noting the request, so however the network delays requests this holds.
      const most = busiestWindow(times, 1000);
      const span = (Math.max(...times) - Math.min(...times)) / 1000;
      console.log(
        `[sync-subscriptions] ${provider}: ${times.length} requests over ${span.toFixed(2)} s, at most ${most} in any second (limit ${rps}/s)`,
      );
      expect(times.length).toBeGreaterThan(2 * rps);
      const gaps = [...times].sort((a, b) => a - b).map((t, i, all) => Math.round(t - (all[i - 1] ?? t)));
      expect(most, `gaps between requests (ms): ${gaps.join(' ')}`).toBeLessThanOrEqual(rps);
    }
  });

  it('dropped the index entry of a deleted subscription', async () => {
    expect(await subs.client.zscore('subs:due', 'deleted-one')).toBeNull();
  });
});

describe('sync-subscriptions with MAX_PAGES', () => {
  it('stops after MAX_PAGES × BATCH_SIZE and leaves the rest due for the next run', async () => {
    const expiresAt = now + 2 * 3600_000;
    const answers: Answer[] = [{ ok: { play: 'SUBSCRIPTION_STATE_ACTIVE', expiresAt } }];
    await seed(
      ['pg-1', 'pg-2', 'pg-3'].map((id, i) => ({ id, provider: 'play', status: 'active', expiresAt, answers, dueAt: now - 10_000 + i })),
    );
    const run = await manualRun('sync-subscriptions-one-page');
    expect(JSON.parse(run.output!)).toEqual({ checked: 2, updated: 0, unchanged: 2, failed: 0, throttled: 0 });
    expect(run.logTail).toContain('more subscriptions are due than MAX_PAGES');
    // Soonest due first: the last one waits for the next run.
    expect(await score('pg-1')).toBe(expiresAt);
    expect(await score('pg-2')).toBe(expiresAt);
    expect(await score('pg-3')).toBe(now - 10_000 + 2);
  });
});
