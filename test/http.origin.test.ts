import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpDeps } from '../src/http/deps.js';
import { hostPolicy, listenPolicy, UnsafeListenError } from '../src/http/hosts.js';
import { buildServer } from '../src/http/server.js';
import { createLogger } from '../src/lib/logger.js';
import { configFrom } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// The Host and Origin rules through inject(), with a stand-in for dispatch that counts
// what got through. The same against a real daemon and chromium: http.origin.browser.
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let client: Redis;
const made: string[] = [];

function server(opts: { listenHost?: string; allowed?: string[]; token?: string } = {}): FastifyInstance {
  const deps = {
    config: configFrom(`
defaults: { image: runlet/busybox:local }
tasks:
  x: { command: ["true"] }
  hook: { command: ["true"], webhook: { auth: none } }
`),
    redis: client,
    token: opts.token,
    hosts: hostPolicy(opts.listenHost ?? '127.0.0.1', opts.allowed),
    metrics: new Registry(),
    health: async () => ({}),
    pausedTasks: async () => new Set<string>(),
    nextFireTimes: () => [],
    store: { list: async () => [], last: async () => undefined },
    pause: async (task: string) => void made.push(`pause:${task}`),
    submitManual: async (task: string) => (made.push(`run:${task}`), { runId: `R${made.length}`, created: true }),
    submit: async () => (made.push('hook'), { runId: `R${made.length}`, created: true }),
  } as unknown as HttpDeps;
  return buildServer(deps, createLogger({ level: 'silent' }));
}

let local: FastifyInstance;
beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis(redis.path);
  local = server();
});
afterAll(async () => {
  await local?.close();
  client?.disconnect();
  await redis?.stopAndClean();
});

const post = (app: FastifyInstance, url: string, headers: Record<string, string>) => app.inject({ method: 'POST', url, headers });

describe('Host', () => {
  it.each(['localhost', 'localhost:8080', '127.0.0.1:9', '[::1]:8080', 'LOCALHOST.:1', '10.1.2.3:8080', '[fe80::1]'])(
    '%s is answered',
    async (host) => {
      expect((await local.inject({ url: '/healthz', headers: { host } })).statusCode).toBe(200);
    },
  );

  it.each(['/api/tasks', '/healthz', '/metrics', '/', '/hooks/hook', '/no-such-route'])(
    'a foreign name is refused with 421 on %s, saying how to allow it',
    async (url) => {
      const res = await local.inject({ url, headers: { host: 'evil.example:8080' } });
      expect(res.statusCode).toBe(421);
      expect(res.json().error.code).toBe('HOST_NOT_ALLOWED');
      expect(res.json().error.message).toContain('refused Host "evil.example:8080"');
      expect(res.json().error.message).toContain('RUNLET_ALLOWED_HOSTS');
    },
  );

  it('a name that is no host (userinfo, path) is refused', async () => {
    expect((await local.inject({ url: '/healthz', headers: { host: 'evil.example@127.0.0.1' } })).statusCode).toBe(421);
  });

  it('answers to its RUNLET_HOST name and to RUNLET_ALLOWED_HOSTS, and to any name with "*"', async () => {
    const named = server({ listenHost: 'runlet.internal', allowed: ['runlet.example.com', 'ci.example'], token: 't' });
    for (const host of ['runlet.internal:8080', 'RUNLET.example.com', 'ci.example:443'])
      expect((await named.inject({ url: '/healthz', headers: { host } })).statusCode).toBe(200);
    expect((await named.inject({ url: '/healthz', headers: { host: 'other.example' } })).statusCode).toBe(421);
    const any = server({ listenHost: '0.0.0.0', allowed: ['*'], token: 't' });
    expect((await any.inject({ url: '/healthz', headers: { host: 'other.example' } })).statusCode).toBe(200);
    await Promise.all([named.close(), any.close()]);
  });
});

describe('Origin, for state changes', () => {
  it.each([
    ['Origin of another port', { origin: 'http://127.0.0.1:9999' }, 'Origin: http://127.0.0.1:9999'],
    ['Origin of another name', { origin: 'http://localhost:8080' }, 'Origin: http://localhost:8080'],
    ['Origin null (sandboxed frame, file://)', { origin: 'null' }, 'Origin: null'],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site', origin: 'http://127.0.0.1:8080' }, 'Sec-Fetch-Site: same-site'],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }, 'Sec-Fetch-Site: cross-site'],
  ])('%s: 403 naming the header, nothing done', async (_name, headers, named) => {
    const before = made.length;
    for (const url of ['/api/tasks/x/runs', '/api/tasks/x/pause', '/hooks/hook']) {
      const res = await post(local, url, { host: '127.0.0.1:8080', ...headers });
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toMatchObject({ code: 'CROSS_ORIGIN' });
      expect(res.json().error.message).toContain(`from another origin (${named})`);
    }
    expect(made.length).toBe(before);
  });

  it('its own origin, and clients that send no Origin, get through', async () => {
    expect(
      (await post(local, '/api/tasks/x/runs', { host: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080', 'sec-fetch-site': 'same-origin' }))
        .statusCode,
    ).toBe(202);
    // The default port is the same origin written either way.
    expect((await post(local, '/api/tasks/x/pause', { host: 'localhost:80', origin: 'http://localhost' })).statusCode).toBe(200);
    // Typed into the address bar, or the runlet CLI, curl and webhook senders.
    expect((await post(local, '/api/tasks/x/pause', { host: '127.0.0.1:8080', 'sec-fetch-site': 'none' })).statusCode).toBe(200);
    expect((await post(local, '/hooks/hook', { host: '127.0.0.1:8080' })).statusCode).toBe(202);
  });

  it('behind a TLS proxy that passes Host through, the https page is its own origin', async () => {
    const proxied = server({ allowed: ['runlet.example.com'] });
    expect(
      (
        await post(proxied, '/api/tasks/x/pause', {
          host: 'runlet.example.com',
          origin: 'https://runlet.example.com',
          'sec-fetch-site': 'same-origin',
        })
      ).statusCode,
    ).toBe(200);
    await proxied.close();
  });

  it('reads are not refused for their Origin (the browser keeps the answer from the page)', async () => {
    expect(
      (
        await local.inject({
          url: '/api/tasks',
          headers: { host: '127.0.0.1:8080', origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
        })
      ).statusCode,
    ).toBe(200);
  });

  it('with a token too, and before it: the refusal says why, not "wrong token"', async () => {
    const tokened = server({ token: 'secret' });
    const res = await post(tokened, '/api/tasks/x/runs', { host: '127.0.0.1:8080', origin: 'http://evil.example' });
    expect(res.statusCode).toBe(403);
    expect((await post(tokened, '/api/tasks/x/runs', { host: '127.0.0.1:8080', authorization: 'Bearer secret' })).statusCode).toBe(202);
    await tokened.close();
  });
});

describe('where the daemon may listen', () => {
  it('without a token, on loopback only', () => {
    for (const host of [undefined, '127.0.0.1', '127.0.0.2', 'localhost', '::1']) expect(() => listenPolicy({ host })).not.toThrow();
    for (const host of ['0.0.0.0', '::', '192.168.1.5', 'runlet.example.com']) {
      expect(() => listenPolicy({ host })).toThrow(UnsafeListenError);
      expect(() => listenPolicy({ host, token: 't' })).not.toThrow();
    }
    expect(listenPolicy({ token: 't' }).host).toBe('0.0.0.0');
  });

  it('RUNLET_ALLOWED_HOSTS=* needs a token', () => {
    expect(() => listenPolicy({ allowedHosts: ['*'] })).toThrow(/RUNLET_ALLOWED_HOSTS=\* turns off the Host check/);
    expect(listenPolicy({ allowedHosts: ['*'], token: 't' }).hosts.any).toBe(true);
  });
});
