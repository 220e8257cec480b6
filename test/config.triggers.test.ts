import { describe, expect, it } from 'vitest';
import type { RunletConfig } from '../src/config/types.js';
import { configErrorFor, loadLines } from './helpers/config.js';

const IMAGE = ['defaults:', '  image: runlet/busybox:local'];

const load = (lines: string[], env: NodeJS.ProcessEnv = {}): RunletConfig => loadLines(lines, env, IMAGE);
/** Line numbers count the two IMAGE lines. */
const errorFor = (lines: string[], env: NodeJS.ProcessEnv = {}): string => configErrorFor(lines, env, IMAGE);

describe('the triggers of the issue example', () => {
  const config = load(
    [
      'tasks:',
      '  bid-placed:',
      '    webhook:',
      '      secret: ${BID_SECRET}',
      '      signature: hmac-sha256',
      '      tolerance: 5m',
      '      respond: accepted',
      '      maxBody: 256k',
      '      rateLimit: 100/m',
      '    queue: { name: bids, redis: "${BIDS_REDIS_URL:-}" }',
      '  app-starts:',
      '    mongo:',
      '      url: ${MONGO_URL}',
      '      db: studo',
      '      collection: appStarts',
      '      operations: [insert]',
      '      match: { "fullDocument.platform": "ios" }',
      '  archive-app-starts:',
      '    schedule: "0 3 * * *"',
      '  rollup-analytics:',
      '    after: { task: archive-app-starts, status: [succeeded] }',
    ],
    { BID_SECRET: 's3cret', MONGO_URL: 'mongodb://db:27017' },
  );

  it('resolves the webhook, with the secret read from the environment', () => {
    expect(config.tasks['bid-placed'].webhook).toEqual({
      auth: 'signature',
      secret: 's3cret',
      signature: 'hmac-sha256',
      toleranceMs: 300_000,
      dedupe: 'id',
      dedupeWindowMs: 600_000,
      respond: 'accepted',
      resultTimeoutMs: 30_000,
      maxBodyBytes: 256 * 1024,
      rateLimit: { count: 100, perMs: 60_000 },
      headers: [],
    });
  });

  it("resolves the queue on runlet's own Redis when the URL interpolates to nothing", () => {
    expect(config.tasks['bid-placed'].queue).toEqual({ name: 'bids', prefix: 'bull', concurrency: 50 });
  });

  it('resolves the change stream', () => {
    expect(config.tasks['app-starts'].mongo).toEqual({
      url: 'mongodb://db:27017',
      db: 'studo',
      collection: 'appStarts',
      operations: ['insert'],
      match: { 'fullDocument.platform': 'ios' },
      fullDocument: 'updateLookup',
    });
  });

  it('normalises one after: map to a list', () => {
    expect(config.tasks['rollup-analytics'].after).toEqual([{ task: 'archive-app-starts', status: ['succeeded'] }]);
  });

  it('leaves trigger keys out of tasks that have none', () => {
    const task = config.tasks['archive-app-starts'];
    expect(['webhook', 'queue', 'mongo', 'after'].filter((k) => k in task)).toEqual([]);
  });
});

describe('trigger defaults and spellings', () => {
  it("a webhook with only a secret gets every default, maxBody from the task's maxPayload", () => {
    const config = load([
      '  maxPayload: 64k',
      'tasks:',
      '  a:',
      '    webhook: { secret: x }',
      '  b:',
      '    maxPayload: 2m',
      '    webhook: { secret: x }',
    ]);
    const defaults = {
      auth: 'signature',
      secret: 'x',
      signature: 'hmac-sha256',
      toleranceMs: 300_000,
      dedupe: 'id',
      dedupeWindowMs: 600_000,
      respond: 'accepted',
      resultTimeoutMs: 30_000,
      headers: [],
    };
    expect(config.tasks.a.webhook).toEqual({ ...defaults, maxBodyBytes: 64 * 1024 });
    expect(config.tasks.b.webhook).toEqual({ ...defaults, maxBodyBytes: 2 * 1024 ** 2 });
  });

  it('a webhook with every key set', () => {
    const config = load([
      'tasks:',
      '  a:',
      '    maxPayload: 1m',
      '    webhook:',
      '      auth: none',
      '      signature: github',
      '      tolerance: 10m',
      '      dedupe: body',
      '      dedupeWindow: 30s',
      '      respond: result',
      '      resultTimeout: 2m',
      '      maxBody: 1m',
      '      rateLimit: 20/10s',
      '      headers: [X-Shop-Id, x-tenant]',
    ]);
    expect(config.tasks.a.webhook).toEqual({
      auth: 'none',
      signature: 'github',
      toleranceMs: 600_000,
      dedupe: 'body',
      dedupeWindowMs: 30_000,
      respond: 'result',
      resultTimeoutMs: 120_000,
      maxBodyBytes: 1024 ** 2,
      rateLimit: { count: 20, perMs: 10_000 },
      headers: ['x-shop-id', 'x-tenant'],
    });
  });

  it.each([
    ['100/s', { count: 100, perMs: 1_000 }],
    ['5/sec', { count: 5, perMs: 1_000 }],
    ['5 / second', { count: 5, perMs: 1_000 }],
    ['30/min', { count: 30, perMs: 60_000 }],
    ['30/minute', { count: 30, perMs: 60_000 }],
    ['1/h', { count: 1, perMs: 3_600_000 }],
    ['1/hour', { count: 1, perMs: 3_600_000 }],
    ['10/1h30m', { count: 10, perMs: 5_400_000 }],
  ])('rateLimit %s', (rate, expected) => {
    const config = load(['tasks:', '  a:', `    webhook: { secret: x, rateLimit: "${rate}" }`]);
    expect(config.tasks.a.webhook?.rateLimit).toEqual(expected);
  });

  it('headers may be one comma-separated string, as ${VAR} gives it', () => {
    const config = load(['tasks:', '  a:', '    webhook: { secret: x, headers: "${HOOK_HEADERS}" }'], { HOOK_HEADERS: 'X-A, x-b' });
    expect(config.tasks.a.webhook?.headers).toEqual(['x-a', 'x-b']);
  });

  it('a queue with its own Redis, prefix and concurrency (numbers from ${VAR} too)', () => {
    const config = load(['tasks:', '  a:', '    queue: { name: " bids ", redis: "${R}", prefix: "{shop}", concurrency: "${C:-10}" }'], {
      R: 'rediss://q:6380/2',
    });
    expect(config.tasks.a.queue).toEqual({ name: 'bids', redisUrl: 'rediss://q:6380/2', prefix: '{shop}', concurrency: 10 });
  });

  it('the same queue name in different Redis servers or prefixes is not a clash', () => {
    const config = load([
      'tasks:',
      '  a:',
      '    queue: { name: bids }',
      '  b:',
      '    queue: { name: bids, redis: "redis://other:6379" }',
      '  c:',
      '    queue: { name: bids, prefix: shop }',
    ]);
    expect(Object.values(config.tasks).map((t) => t.queue?.name)).toEqual(['bids', 'bids', 'bids']);
  });

  it('a change stream whose URL is unset loads, with url undefined, and every default', () => {
    const config = load(['tasks:', '  a:', '    mongo: { url: "${MONGO_URL:-}", db: studo, collection: appStarts }']);
    expect(config.tasks.a.mongo).toEqual({
      db: 'studo',
      collection: 'appStarts',
      operations: ['insert', 'update', 'replace', 'delete'],
      fullDocument: 'updateLookup',
    });
  });

  it('operations as one word or a comma-separated ${VAR}; fullDocument default', () => {
    const config = load(
      [
        'tasks:',
        '  a:',
        '    mongo: { url: "mongodb+srv://c.example.net", db: s, collection: c, operations: update, fullDocument: default }',
        '  b:',
        '    mongo: { url: "mongodb://h", db: s, collection: c, operations: "${OPS}" }',
      ],
      { OPS: 'insert,delete' },
    );
    expect(config.tasks.a.mongo).toMatchObject({ url: 'mongodb+srv://c.example.net', operations: ['update'], fullDocument: 'default' });
    expect(config.tasks.b.mongo?.operations).toEqual(['insert', 'delete']);
  });

  it('after: as a list, status as one word or a list', () => {
    const config = load([
      'tasks:',
      '  a: {}',
      '  b: {}',
      '  c:',
      '    after:',
      '      - { task: a, status: failed }',
      '      - task: b',
      '        status: [succeeded, timed_out, oom_killed]',
    ]);
    expect(config.tasks.c.after).toEqual([
      { task: 'a', status: ['failed'] },
      { task: 'b', status: ['succeeded', 'timed_out', 'oom_killed'] },
    ]);
  });

  it('a task may have several triggers', () => {
    const config = load([
      'tasks:',
      '  up: {}',
      '  a:',
      '    schedule: "@hourly"',
      '    webhook: { secret: x }',
      '    queue: { name: bids }',
      '    mongo: { url: "", db: s, collection: c }',
      '    after: { task: up }',
    ]);
    const a = config.tasks.a;
    expect([a.schedule, a.webhook?.auth, a.queue?.name, a.mongo?.db, a.after?.[0].task]).toEqual([
      '@hourly',
      'signature',
      'bids',
      's',
      'up',
    ]);
  });
});

describe('webhook mistakes', () => {
  const SECRET_FIX =
    "so the webhook would accept anyone's requests: set secret (e.g. secret: ${HOOK_SECRET}), or write auth: none to accept unsigned requests on purpose";

  it.each([
    ['webhook:', 'empty'],
    ['webhook: {}', 'an empty map'],
    ['webhook: { respond: result }', 'no secret'],
  ])('%s (%s) would accept anyone', (line) => {
    expect(errorFor(['tasks:', '  a:', `    ${line}`])).toBe(`runlet.yaml:5:5 tasks.a.webhook: no secret is set, ${SECRET_FIX}`);
  });

  it('a secret that interpolated to nothing would accept anyone', () => {
    expect(errorFor(['tasks:', '  a:', '    webhook:', '      secret: ${BID_SECRET:-}'])).toBe(
      `runlet.yaml:5:5 tasks.a.webhook: secret is empty (did its \${VAR} interpolate to nothing?), ${SECRET_FIX}`,
    );
  });

  it('an unset ${BID_SECRET} is reported once, as the unset variable', () => {
    expect(errorFor(['tasks:', '  a:', '    webhook:', '      secret: ${BID_SECRET}'])).toBe(
      'runlet.yaml:6:15 tasks.a.webhook.secret: environment variable BID_SECRET is not set (write ${BID_SECRET:-default} to give a default)',
    );
  });

  it('auth: none with a secret is a contradiction', () => {
    expect(errorFor(['tasks:', '  a:', '    webhook:', '      auth: none', '      secret: x'])).toBe(
      'runlet.yaml:7:7 tasks.a.webhook.secret: auth: none accepts unsigned requests, so this secret would never be checked: remove secret, or remove auth: none to require signed requests',
    );
  });

  it('a maxBody larger than the maxPayload the run could take', () => {
    expect(errorFor(['tasks:', '  a:', '    webhook:', '      secret: x', '      maxBody: 2m'])).toBe(
      "runlet.yaml:7:16 tasks.a.webhook.maxBody: maxBody 2m is more than the task's maxPayload of 1m (the default), " +
        "so a body between the two would be accepted and then refused as the run's payload: raise maxPayload to at least 2m or lower maxBody",
    );
    expect(errorFor(['  maxPayload: 512k', 'tasks:', '  a:', '    webhook: { secret: x, maxBody: 1m }'])).toMatch(
      /^runlet\.yaml:6:36 tasks\.a\.webhook\.maxBody: maxBody 1m is more than the task's maxPayload of 512k \(from defaults\.maxPayload\), /,
    );
  });

  it.each([
    ['lots', 'expected a rate like "100/m" (100 a minute) or "20/10s", got "lots"'],
    ['100/week', 'expected a rate like "100/m" (100 a minute) or "20/10s", got "100/week"'],
    ['100', 'expected a rate like "100/m" (100 a minute) or "20/10s", got 100 (a count needs a period: write "100/m" or "100/s")'],
    ['0/m', 'the count must be at least 1 (to refuse every request, remove webhook:), got "0/m"'],
    ['10/500ms', 'the period must be at least 1s, got "10/500ms"'],
  ])('rateLimit: %s', (rate, message) => {
    expect(errorFor(['tasks:', '  a:', '    webhook:', '      secret: x', `      rateLimit: ${rate}`])).toBe(
      `runlet.yaml:7:18 tasks.a.webhook.rateLimit: ${message}`,
    );
  });

  it('a choice, a duration and a header name that are wrong, each at its own place', () => {
    expect(
      errorFor([
        'tasks:',
        '  a:',
        '    webhook:',
        '      secret: x',
        '      signature: hmac',
        '      respond: reslt',
        '      tolerance: 0s',
        '      resultTimeout: 10',
        '      headers: [x-a, "bad header", X-A]',
      ]),
    ).toBe(
      [
        'runlet.yaml:7:18 tasks.a.webhook.signature: expected "hmac-sha256" or "github" or "bearer" or "standard-webhooks", got "hmac"',
        'runlet.yaml:8:16 tasks.a.webhook.respond: expected "accepted" or "result", got "reslt" (did you mean "result"?)',
        'runlet.yaml:9:18 tasks.a.webhook.tolerance: must be at least 1s, got "0s"',
        'runlet.yaml:10:22 tasks.a.webhook.resultTimeout: expected a duration like "30s", "10m" or "2h", got 10 (a number needs a unit: write "10s" or "10m")',
        'runlet.yaml:11:22 tasks.a.webhook.headers[1]: expected a header name like "x-shop-id", got "bad header"',
        'runlet.yaml:11:36 tasks.a.webhook.headers[2]: "X-A" is listed twice',
      ].join('\n'),
    );
  });

  it('standard-webhooks: a secret that is not whsec_<base64> is refused, without echoing it', () => {
    const line = (secret: string) =>
      errorFor(['tasks:', '  a:', '    webhook:', `      secret: "${secret}"`, '      signature: standard-webhooks']);
    for (const secret of ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_', 'whsec_not base64!']) {
      const message = line(secret);
      expect(message).toBe(
        'runlet.yaml:6:7 tasks.a.webhook.secret: signature: standard-webhooks needs secret written whsec_<base64 key>, as the sender shows it, and this secret is not: copy it whole, whsec_ included',
      );
    }
    const ok = load(['tasks:', '  a:', '    webhook: { secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", signature: standard-webhooks }']);
    expect(ok.tasks.a.webhook?.signature).toBe('standard-webhooks');
  });

  it('dedupe: body only where requests carry no signed id; dedupeWindow only with it, at most 24h', () => {
    expect(errorFor(['tasks:', '  a:', '    webhook:', '      secret: x', '      dedupe: body'])).toBe(
      'runlet.yaml:7:15 tasks.a.webhook.dedupe: with signature: hmac-sha256 every request carries a signed event id, so dedupe: body would never be used: remove dedupe (or use signature: bearer, whose requests carry none)',
    );
    expect(errorFor(['tasks:', '  a:', '    webhook:', '      secret: x', '      signature: bearer', '      dedupeWindow: 1m'])).toBe(
      'runlet.yaml:8:7 tasks.a.webhook.dedupeWindow: dedupeWindow applies only with dedupe: body, so it would never be used: add dedupe: body or remove dedupeWindow',
    );
    expect(
      errorFor([
        'tasks:',
        '  a:',
        '    webhook:',
        '      secret: x',
        '      signature: bearer',
        '      dedupe: body',
        '      dedupeWindow: 2d',
      ]),
    ).toBe(
      'runlet.yaml:9:21 tasks.a.webhook.dedupeWindow: dedupeWindow 2d is more than 24h, the longest runlet remembers a body for: lower it (identical bodies a day apart are rarely one event)',
    );
    expect(load(['tasks:', '  a:', '    webhook: { auth: none, dedupe: body }']).tasks.a.webhook).toMatchObject({
      dedupe: 'body',
      dedupeWindowMs: 600_000,
    });
  });

  it('a secret of the wrong type is not echoed', () => {
    expect(errorFor(['tasks:', '  a:', '    webhook:', '      secret: 123456'])).toBe(
      'runlet.yaml:6:15 tasks.a.webhook.secret: expected a string (quote it), got a number',
    );
  });

  it('an unknown key, with a did-you-mean', () => {
    expect(errorFor(['tasks:', '  a:', '    webhook:', '      secret: x', '      signatur: github'])).toBe(
      'runlet.yaml:7:7 tasks.a.webhook.signatur: unknown key "signatur" (did you mean "signature"?)',
    );
  });

  it('not a map', () => {
    expect(errorFor(['tasks:', '  a:', '    webhook: yes'])).toBe(
      'runlet.yaml:5:14 tasks.a.webhook: expected a map like { secret: ${HOOK_SECRET} }, got "yes"',
    );
  });
});

describe('queue mistakes', () => {
  it('a name BullMQ would not take, a URL that is not Redis (without echoing it)', () => {
    expect(errorFor(['tasks:', '  a:', '    queue:', '      name: "bids:eu"', '      redis: "http://user:pw@host"'])).toBe(
      [
        'runlet.yaml:6:13 tasks.a.queue.name: a BullMQ queue name can\'t contain ":" (BullMQ separates its Redis keys with it), got "bids:eu"',
        'runlet.yaml:7:14 tasks.a.queue.redis: expected a Redis URL starting with redis://, rediss://, unix://, got a URL starting with "http://"',
      ].join('\n'),
    );
  });

  it('a missing or empty name', () => {
    expect(errorFor(['tasks:', '  a:', '    queue: { redis: "redis://h" }', '  b:', '    queue: { name: " " }'])).toBe(
      [
        'runlet.yaml:5:5 tasks.a.queue.name: required key is missing: add name: <the BullMQ queue the producers add jobs to>',
        'runlet.yaml:7:20 tasks.b.queue.name: must not be empty: name the BullMQ queue the producers add jobs to',
      ].join('\n'),
    );
  });

  it("two tasks on the same queue would steal each other's jobs", () => {
    expect(errorFor(['tasks:', '  a:', '    queue: { name: bids }', '  b:', '    queue: { name: bids, redis: "${R:-}" }'])).toBe(
      'runlet.yaml:7:20 tasks.b.queue.name: queue "bids" in runlet\'s own Redis is already the trigger of task "a": ' +
        "the two tasks would take each other's jobs, so each job would run only one of them; give each task its own queue, or chain this one with after: { task: a }",
    );
    expect(
      errorFor([
        'tasks:',
        '  a:',
        '    queue: { name: bids, redis: "redis://q" }',
        '  b:',
        '    queue: { name: bids, redis: "redis://q" }',
      ]),
    ).toMatch(/^runlet\.yaml:7:20 tasks\.b\.queue\.name: queue "bids" in the same Redis is already the trigger of task "a": /);
  });

  it('an unknown key, a bad concurrency, not a map', () => {
    expect(
      errorFor([
        'tasks:',
        '  a:',
        '    queue: { name: q, concurency: 5 }',
        '  b:',
        '    queue: { name: r, concurrency: 0 }',
        '  c:',
        '    queue: bids',
      ]),
    ).toBe(
      [
        'runlet.yaml:5:23 tasks.a.queue.concurency: unknown key "concurency" (did you mean "concurrency"?)',
        'runlet.yaml:7:36 tasks.b.queue.concurrency: must be at least 1, got 0',
        'runlet.yaml:9:12 tasks.c.queue: expected a map like { name: bids }, got "bids"',
      ].join('\n'),
    );
  });
});

describe('mongo mistakes', () => {
  it('each wrong field at its own place', () => {
    expect(
      errorFor([
        'tasks:',
        '  a:',
        '    mongo:',
        '      url: "postgres://u:pw@h/db"',
        '      db: studo.appStarts',
        '      collection: ""',
        '      operations: [insert, insrt, insert]',
        '      match: [1]',
        '      fullDocument: lookup',
      ]),
    ).toBe(
      [
        'runlet.yaml:6:12 tasks.a.mongo.url: expected a MongoDB URL starting with mongodb:// or mongodb+srv://, got a URL starting with "postgres://"',
        'runlet.yaml:7:11 tasks.a.mongo.db: a MongoDB db name can\'t contain ".", got "studo.appStarts" (for "studo.appStarts", write db: studo and collection: appStarts)',
        'runlet.yaml:8:19 tasks.a.mongo.collection: must not be empty: name the collection to watch',
        'runlet.yaml:9:28 tasks.a.mongo.operations[1]: expected an operation (insert, update, replace, delete), got "insrt"',
        'runlet.yaml:9:35 tasks.a.mongo.operations[2]: "insert" is listed twice',
        'runlet.yaml:10:14 tasks.a.mongo.match: expected a map like { "fullDocument.platform": "ios" }, got a list',
        'runlet.yaml:11:21 tasks.a.mongo.fullDocument: expected "default" or "updateLookup", got "lookup"',
      ].join('\n'),
    );
  });

  it('missing keys and an empty operations list', () => {
    expect(errorFor(['tasks:', '  a:', '    mongo:', '      operations: []'])).toBe(
      [
        'runlet.yaml:5:5 tasks.a.mongo.url: required key is missing: add url: ${MONGO_URL} (it may be left unset with ${MONGO_URL:-}; the stream then waits unconfigured)',
        'runlet.yaml:5:5 tasks.a.mongo.db: required key is missing: add db: studo',
        'runlet.yaml:5:5 tasks.a.mongo.collection: required key is missing: add collection: appStarts',
        'runlet.yaml:6:19 tasks.a.mongo.operations: must list at least one of insert, update, replace, delete (leave operations out for all four)',
      ].join('\n'),
    );
  });

  it('an unknown key, with a did-you-mean', () => {
    expect(errorFor(['tasks:', '  a:', '    mongo: { url: "", db: s, collection: c, operation: [insert] }'])).toBe(
      'runlet.yaml:5:45 tasks.a.mongo.operation: unknown key "operation" (did you mean "operations"?)',
    );
  });
});

describe('after mistakes', () => {
  it('an unknown task, with a did-you-mean and the tasks there are', () => {
    expect(errorFor(['tasks:', '  archive: {}', '  rollup:', '    after: { task: archve }'])).toBe(
      'runlet.yaml:6:20 tasks.rollup.after.task: unknown task "archve" (did you mean "archive"?), so this trigger could never fire; tasks: archive, rollup',
    );
  });

  it('an unknown task in a list, without a close match', () => {
    expect(errorFor(['tasks:', '  archive: {}', '  rollup:', '    after:', '      - task: archive', '      - task: zzz'])).toBe(
      'runlet.yaml:8:15 tasks.rollup.after[1].task: unknown task "zzz", so this trigger could never fire; tasks: archive, rollup',
    );
  });

  it('a status that is not one a run ends in, an unknown key, a missing task, not a map', () => {
    expect(
      errorFor([
        'tasks:',
        '  a:',
        '    after: { task: b, status: [succeded] }',
        '  b:',
        '    after: [{ task: c, state: failed }, {}]',
        '  c:',
        '    after: nope',
        '  d:',
        '    after: { task: c, status: [] }',
      ]),
    ).toBe(
      [
        'runlet.yaml:5:32 tasks.a.after.status[0]: expected a run status (succeeded, failed, timed_out, oom_killed, cancelled, skipped, lost), got "succeded"',
        'runlet.yaml:7:24 tasks.b.after[0].state: unknown key "state" (did you mean "status"?)',
        'runlet.yaml:7:41 tasks.b.after[1].task: required key is missing: add task: <the task whose runs trigger this one>',
        'runlet.yaml:9:12 tasks.c.after: expected a map like { task: archive, status: [succeeded] }, or a list of them, got "nope"',
        'runlet.yaml:11:31 tasks.d.after.status: must list at least one status (leave status out for [succeeded])',
      ].join('\n'),
    );
  });
});

describe('chaining loops', () => {
  const loop = (at: string, chain: string) =>
    `${at} tasks.${chain.split(' ')[0]}.after: chaining loop: ${chain} (each run would trigger the next forever); remove one after:`;

  it('a task after itself', () => {
    expect(errorFor(['tasks:', '  a:', '    after: { task: a }'])).toBe(loop('runlet.yaml:5:5', 'a → a'));
  });

  it('two tasks after each other, reported once at the first', () => {
    expect(errorFor(['tasks:', '  a:', '    after: { task: b, status: failed }', '  b:', '    after: { task: a }'])).toBe(
      loop('runlet.yaml:5:5', 'a → b → a'),
    );
  });

  it('three tasks, named in the order runs trigger each other', () => {
    // a runs after c, b after a, c after b: a → b → c → a.
    expect(
      errorFor([
        'tasks:',
        '  a:',
        '    after: { task: c }',
        '  b:',
        '    after: { task: a }',
        '  c:',
        '    after: { task: b }',
        '  d:',
        '    after: { task: c }',
      ]),
    ).toBe(loop('runlet.yaml:5:5', 'a → b → c → a'));
  });

  it('each distinct loop once, starting at its first task in the file', () => {
    expect(
      errorFor([
        'tasks:',
        '  x: {}',
        '  a:',
        '    after: { task: c }',
        '  b:',
        '    after: { task: a }',
        '  c:',
        '    after: [{ task: b }, { task: a }]',
      ]),
    ).toBe([loop('runlet.yaml:6:5', 'a → b → c → a'), loop('runlet.yaml:6:5', 'a → c → a')].join('\n'));
  });

  it('a chain that ends is fine', () => {
    const config = load(['tasks:', '  a: {}', '  b:', '    after: { task: a }', '  c:', '    after: [{ task: a }, { task: b }]']);
    expect(config.tasks.c.after?.map((a) => a.task)).toEqual(['a', 'b']);
  });
});
