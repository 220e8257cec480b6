import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { configFrom } from './helpers/daemon.js';

const issues = (yaml: string): string[] => {
  try {
    configFrom(yaml);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
};

describe('http: on a task', () => {
  it('resolves routes, keys, rate, CORS and the timeout', () => {
    const c = configFrom(`
tasks:
  api:
    image: runlet/node:local
    warm: 2
    reuse: true
    http:
      routes: ["get /users/:id", "POST /users"]
      auth: apiKeys
      apiKeys: { alice: a-key, bob: b-key }
      rateLimit: { perKey: 10/s }
      cors: { origins: ["https://tests.example"] }
      timeout: 10s
`);
    const t = c.tasks.api!;
    expect(t.warm).toBe(2);
    expect(t.reuse).toBe(true);
    expect(t.http).toEqual({
      routes: [
        { method: 'GET', path: '/users/:id', key: 'GET /users/:id' },
        { method: 'POST', path: '/users', key: 'POST /users' },
      ],
      auth: 'apiKeys',
      apiKeys: { alice: 'a-key', bob: 'b-key' },
      rateLimitPerKey: { count: 10, perMs: 1000 },
      cors: { origins: ['https://tests.example'], headers: ['content-type', 'authorization', 'x-api-key'], maxAgeMs: 600_000 },
      timeoutMs: 10_000,
    });
  });

  it('two tasks claiming the same method and path are an error naming both, at file:line:col', () => {
    const out = issues(`
tasks:
  a:
    image: runlet/node:local
    http: { routes: ["GET /users/:id"], auth: none }
  b:
    image: runlet/node:local
    http:
      auth: none
      routes: ["POST /users", "ANY /users/:userId"]
`);
    expect(out).toEqual([
      expect.stringMatching(
        /runlet\.yaml:10:31 tasks\.b\.http\.routes\[1\]: route "ANY \/users\/:userId" is already claimed by task "a" \("GET \/users\/:id"\)/,
      ),
    ]);
  });

  it('auth and its credentials must agree; bad routes, methods and origins are named', () => {
    const out = issues(`
tasks:
  a:
    image: runlet/node:local
    http: { routes: ["GET /x"], auth: bearer }
  b:
    image: runlet/node:local
    http: { routes: ["FETCH /y", "GET y", "GET /a//b"], auth: apiKeys, apiKeys: { ann: same, bo: same } }
  c:
    image: runlet/node:local
    http: { routes: ["GET /z"], auth: none, rateLimit: { perKey: 5/s }, cors: { origins: ["tests.example"] } }
  d:
    image: runlet/node:local
    http: { routes: ["GET /d"], auth: apiKeys, apiKeysFile: missing.yaml }
  e:
    image: runlet/node:local
    http: { routes: ["GET /e"] }
`).join('\n');
    expect(out).toMatch(/:5:\d+ tasks\.a\.http: auth: bearer needs a secret/);
    expect(out).toMatch(/tasks\.b\.http\.routes\[0\]: unknown method "FETCH"/);
    expect(out).toMatch(/tasks\.b\.http\.routes\[1\]: the path must start with "\/"/);
    expect(out).toMatch(/tasks\.b\.http\.routes\[2\]: empty segment/);
    expect(out).toMatch(/tasks\.b\.http\.apiKeys: "bo" has the same key as "ann"/);
    expect(out).toMatch(/tasks\.c\.http\.rateLimit: rateLimit counts requests per API key, so it needs auth: apiKeys/);
    expect(out).toMatch(/tasks\.c\.http\.cors\.origins\[0\]: expected an origin like/);
    expect(out).toMatch(/tasks\.d\.http\.apiKeysFile: cannot read apiKeysFile "missing.yaml"/);
    expect(out).toMatch(/tasks\.e\.http\.auth: required key is missing|tasks\.e\.http\.auth: expected/);
    // Keys are secrets: never echoed.
    expect(out).not.toContain('same"');
  });
});
