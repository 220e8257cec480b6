import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, displayFile } from '../src/config/errors.js';
import { loadConfig, parseConfig } from '../src/config/load.js';

const MiB = 1024 ** 2;

describe('a valid config', () => {
  const text = [
    'defaults:',
    '  image: runlet/busybox:local',
    '  memory: 128m',
    '  timeout: 1h30m',
    '  retries: { attempts: 2, delay: 10s }',
    'tasks:',
    '  archive-app-starts:',
    '    description: Moves old app starts to the archive.',
    '    image: runlet/tasks:local',
    '    command: [node, archive.js, --days, 30]',
    '    env: { VERSION: 1.10, DEBUG: true, PORT: 8080, NAME: archive }',
    '    schedule: "0 3 * * *"',
    '    timezone: Europe/Vienna',
    '    memory: 1g',
    '    cpus: 1',
    '    timeout: 45m',
    '    killGrace: 30s',
    '    pids: 64',
    '    user: "1000:1000"',
    '    readOnly: true',
    '    network: none',
    '    suspended: "${SUSPEND:-true}"',
    '    catchup: 6h',
    '    pool: heavy',
    '    concurrency: 2',
    '    overlap: skip',
    '    maxQueued: 5',
    '    jitter: 30s',
    '    retries: { attempts: "${ATTEMPTS:-4}", backoff: fixed, delay: 1m, maxDelay: 5m }',
    '  plain:',
    '  partial:',
    '    retries: { maxDelay: 1m }',
    'node: { memory: 8g }',
    'pools:',
    '  heavy: { concurrency: 1, memory: 4g }',
    'retention:',
    '  runs: 20',
    '',
  ].join('\n');
  const config = parseConfig(text, 'runlet.yaml', {});

  it('normalises units and keeps what the task sets', () => {
    expect(config.tasks['archive-app-starts']).toEqual({
      name: 'archive-app-starts',
      description: 'Moves old app starts to the archive.',
      image: 'runlet/tasks:local',
      command: ['node', 'archive.js', '--days', '30'],
      // Numbers stay as typed: 1.10 is "1.10", not "1.1".
      env: { VERSION: '1.10', DEBUG: 'true', PORT: '8080', NAME: 'archive' },
      secrets: {},
      schedule: '0 3 * * *',
      timezone: 'Europe/Vienna',
      memoryBytes: 1024 * MiB,
      cpus: 1,
      timeoutMs: 45 * 60_000,
      killGraceMs: 30_000,
      pids: 64,
      maxPayloadBytes: 1024 * 1024,
      user: '1000:1000',
      readOnly: true,
      network: 'none',
      suspended: true,
      catchupMs: 6 * 3_600_000,
      pool: 'heavy',
      concurrency: 2,
      overlap: 'skip',
      maxQueued: 5,
      jitterMs: 30_000,
      retries: { attempts: 4, backoff: 'fixed', delayMs: 60_000, maxDelayMs: 5 * 60_000 },
      warm: 0,
      warmIdleMs: 0,
      reuse: false,
    });
  });

  it('fills the rest from defaults, then built-ins; the zone defaults to UTC, not the host', () => {
    expect(config.tasks.plain).toEqual({
      name: 'plain',
      image: 'runlet/busybox:local',
      env: {},
      secrets: {},
      timezone: 'UTC',
      memoryBytes: 128 * MiB,
      cpus: 0.5,
      timeoutMs: 90 * 60_000,
      killGraceMs: 10_000,
      pids: 256,
      maxPayloadBytes: 1024 * 1024,
      // The isolation defaults: not root, read-only root filesystem.
      user: '65534:65534',
      readOnly: true,
      network: 'bridge',
      suspended: false,
      catchupMs: 0,
      pool: 'default',
      concurrency: 1,
      overlap: 'queue',
      maxQueued: 100,
      jitterMs: 0,
      retries: { attempts: 2, backoff: 'exponential', delayMs: 10_000, maxDelayMs: 10 * 60_000 },
      warm: 0,
      warmIdleMs: 0,
      reuse: false,
    });
    expect(config.retention).toEqual({ runsPerTask: 20 });
    expect(config.node).toEqual({ memoryBytes: 8 * 1024 * MiB });
    expect(config.pools).toEqual({
      default: { name: 'default', concurrency: 8 },
      heavy: { name: 'heavy', concurrency: 1, memoryBytes: 4 * 1024 * MiB },
    });
    expect(config.file).toBe(path.resolve('runlet.yaml'));
  });

  it('merges retries key by key: task, then defaults.retries, then built-ins', () => {
    expect(config.tasks.partial.retries).toEqual({ attempts: 2, backoff: 'exponential', delayMs: 10_000, maxDelayMs: 60_000 });
  });

  it('is deep-frozen', () => {
    const task = config.tasks['archive-app-starts'];
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.tasks)).toBe(true);
    expect(Object.isFrozen(config.retention)).toBe(true);
    expect(Object.isFrozen(task.env)).toBe(true);
    expect(Object.isFrozen(task.command)).toBe(true);
    expect(() => {
      (task as { cpus: number }).cpus = 64;
    }).toThrow(TypeError);
  });

  it('uses the built-in defaults when there is no defaults: section', () => {
    const c = parseConfig('tasks:\n  a:\n    image: x\n', 'runlet.yaml', {});
    expect(c.tasks.a).toMatchObject({
      memoryBytes: 256 * MiB,
      cpus: 0.5,
      timeoutMs: 15 * 60_000,
      killGraceMs: 10_000,
      pids: 256,
      timezone: 'UTC',
    });
    // One attempt, no retry, unless asked for.
    expect(c.tasks.a.retries).toEqual({ attempts: 1, backoff: 'exponential', delayMs: 30_000, maxDelayMs: 10 * 60_000 });
    expect(c.retention.runsPerTask).toBe(100);
  });

  it('accepts an empty tasks map, written either way', () => {
    expect(parseConfig('tasks: {}\n', 'runlet.yaml', {}).tasks).toEqual({});
    expect(parseConfig('tasks:\n', 'runlet.yaml', {}).tasks).toEqual({});
  });

  it.each(['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually', '*/30 * * * * *', '0 9 * * MON-FRI'])(
    'accepts the schedule %j',
    (schedule) => {
      const c = parseConfig(`tasks:\n  a:\n    image: x\n    schedule: "${schedule}"\n`, 'runlet.yaml', {});
      expect(c.tasks.a.schedule).toBe(schedule);
    },
  );
});

describe('build:', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runlet-config-'));
  fs.mkdirSync(path.join(dir, 'jobs'));
  fs.writeFileSync(path.join(dir, 'jobs', 'Dockerfile'), 'FROM scratch\n');
  fs.mkdirSync(path.join(dir, 'empty'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function load(yaml: string) {
    const file = path.join(dir, 'runlet.yaml');
    fs.writeFileSync(file, yaml);
    return loadConfig(file, {});
  }

  it('is resolved against the config file directory and tagged runlet-build/<task>:latest', () => {
    const c = load('tasks:\n  report:\n    build: jobs\n');
    expect(c.tasks.report).toMatchObject({ build: path.join(dir, 'jobs'), image: 'runlet-build/report:latest' });
  });

  it('is tagged with image: when both are given', () => {
    const c = load('tasks:\n  report:\n    build: ./jobs\n    image: my/report:dev\n');
    expect(c.tasks.report).toMatchObject({ build: path.join(dir, 'jobs'), image: 'my/report:dev' });
  });

  it('must exist and hold a Dockerfile; a file outside the cwd is shown by its base name', () => {
    let error: unknown;
    try {
      load('tasks:\n  a:\n    build: nope\n  b:\n    build: empty\n');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(
      [
        `runlet.yaml:3:12 tasks.a.build: build directory "nope" does not exist (looked for ${path.join(dir, 'nope')}; build: is relative to the config file's directory)`,
        `runlet.yaml:5:12 tasks.b.build: build directory "empty" has no Dockerfile (looked in ${path.join(dir, 'empty')})`,
      ].join('\n'),
    );
  });
});

describe('loadConfig', () => {
  it('loads the example config/runlet.yaml with no environment variables set', () => {
    const c = loadConfig('config/runlet.yaml', {});
    expect(Object.keys(c.tasks)).toEqual([
      'heartbeat',
      'hello-node',
      'archive-app-starts',
      'rollup-analytics',
      'sync-subscriptions',
      'score-weekly-tests',
      'tests-api',
      'bid-placed',
    ]);
    expect(c.tasks.heartbeat).toMatchObject({
      image: 'runlet/busybox:local',
      schedule: '*/30 * * * * *',
      memoryBytes: 16 * MiB,
      timeoutMs: 10_000,
    });
    expect(c.tasks['hello-node']).toMatchObject({ image: 'runlet/tasks:local', command: ['node', 'hello.js'], memoryBytes: 64 * MiB });
    // Task containers on Docker's default bridge unless RUNLET_TASK_NETWORK names another.
    for (const task of Object.values(c.tasks)) expect(task.network, task.name).toBe('bridge');
    expect(c.pools).toMatchObject({ heavy: { concurrency: 1, memoryBytes: 2 * 1024 * MiB }, light: { concurrency: 8 } });
  });

  describe('the example tasks, each on its own image', () => {
    const c = loadConfig('config/runlet.yaml', {});
    const task = (name: string) => c.tasks[name];

    it('names the images scripts/build-images.sh builds from tasks/<name>/main.ts, with no command (the image runs the task)', () => {
      for (const name of [
        'archive-app-starts',
        'rollup-analytics',
        'sync-subscriptions',
        'score-weekly-tests',
        'tests-api',
        'bid-placed',
      ]) {
        expect(task(name), name).toMatchObject({ image: `runlet/task-${name}:local` });
        expect(task(name).command, name).toBeUndefined();
      }
    });

    it('archive-app-starts: nightly at 02:00 Vienna, alone in the heavy pool, 1 GiB for up to 45 minutes', () => {
      expect(task('archive-app-starts')).toMatchObject({
        schedule: '0 2 * * *',
        timezone: 'Europe/Vienna',
        pool: 'heavy',
        memoryBytes: 1024 * MiB,
        timeoutMs: 45 * 60_000,
        overlap: 'skip',
      });
      expect(task('archive-app-starts').retries).toMatchObject({ attempts: 3 });
      expect(c.pools.heavy.memoryBytes).toBeGreaterThanOrEqual(task('archive-app-starts').memoryBytes);
    });

    it('rollup-analytics: hourly in the light pool; sync-subscriptions every 15 minutes', () => {
      expect(task('rollup-analytics')).toMatchObject({ schedule: '5 * * * *', pool: 'light' });
      expect(task('rollup-analytics').after).toBeUndefined();
      expect(task('sync-subscriptions')).toMatchObject({ schedule: '*/15 * * * *', pool: 'light' });
    });

    it('score-weekly-tests: Mondays at 23:00 Vienna, with the week computed in the same zone', () => {
      expect(task('score-weekly-tests')).toMatchObject({
        schedule: '0 23 * * MON',
        timezone: 'Europe/Vienna',
        env: { TIMEZONE: 'Europe/Vienna' },
      });
    });

    it("bid-placed: a signed webhook that answers with the result, and the BullMQ queue bids on runlet's Redis", () => {
      const bid = task('bid-placed');
      expect(bid.schedule).toBeUndefined();
      expect(bid.webhook).toMatchObject({
        auth: 'signature',
        signature: 'hmac-sha256',
        respond: 'result',
        secret: 'local-only-example-secret',
      });
      expect(bid.queue).toMatchObject({ name: 'bids' });
      expect(bid.queue?.redisUrl).toBeUndefined();
      expect(loadConfig('config/runlet.yaml', { BID_WEBHOOK_SECRET: 's3cret' }).tasks['bid-placed'].webhook?.secret).toBe('s3cret');
    });

    it('leaves MONGO_URL empty, so the MongoDB tasks say it is not set instead of waiting for a guessed server', () => {
      expect(task('archive-app-starts').env.MONGO_URL).toBe('');
      expect(task('rollup-analytics').env.MONGO_URL).toBe('');
      const url = 'mongodb://mongo:27017/?replicaSet=rs0';
      const set = loadConfig('config/runlet.yaml', { MONGO_URL: url }).tasks;
      expect([set['archive-app-starts'].env.MONGO_URL, set['rollup-analytics'].env.MONGO_URL]).toEqual([url, url]);
    });

    it('points the services at the host through the default bridge, and at the compose services when told to', () => {
      expect(task('archive-app-starts').env).toMatchObject({
        S3_ENDPOINT: 'http://host.docker.internal:9000',
        S3_FORCE_PATH_STYLE: 'true',
      });
      expect(task('bid-placed').env.AUCTION_REDIS_URL).toBe('redis://host.docker.internal:6379/0');
      const compose = loadConfig('config/runlet.yaml', { RUNLET_TASK_NETWORK: 'runlet-tasks', S3_ENDPOINT: 'http://minio:9000' });
      expect(compose.tasks['score-weekly-tests']).toMatchObject({ network: 'runlet-tasks', env: { S3_ENDPOINT: 'http://minio:9000' } });
    });
  });

  it('reports a missing file as a ConfigError', () => {
    expect(() => loadConfig('config/nope.yaml', {})).toThrow(
      `config/nope.yaml: cannot read the config file: no such file (looked for ${path.resolve('config/nope.yaml')})`,
    );
  });
});

describe('displayFile', () => {
  it('shows a path inside the working directory relative to it, else the base name', () => {
    expect(displayFile('/srv/app/config/runlet.yaml', '/srv/app')).toBe('config/runlet.yaml');
    expect(displayFile('config/runlet.yaml', '/srv/app')).toBe('config/runlet.yaml');
    expect(displayFile('/etc/runlet/runlet.yaml', '/srv/app')).toBe('runlet.yaml');
  });
});
