import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { runCli } from './helpers/process.js';

/**
 * docker-compose.yml as the compose tool itself reads it (`config` resolves anchors, profiles
 * and `${VAR}`), and config/runlet.yaml as runlet reads it with the environment compose gives
 * the runlet service. Nothing is started or pulled: no registry is reachable here.
 */

const SECRETS = {
  RUNLET_TOKEN: 'test-token',
  BID_WEBHOOK_SECRET: 'test-secret',
  ARCHIVE_SALT: 'test-salt',
  MINIO_ROOT_PASSWORD: 'test-password',
  BID_FN_TOKEN: 'test-fn-token',
  ANA_KEY: 'test-ana-key',
  BEN_KEY: 'test-ben-key',
};

/** `docker compose` (v2 plugin) where it exists, else Debian's docker-compose 1.x; none: say why. */
function composeCommand(): string[] {
  const v2 = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  if (v2.status === 0) return ['docker', 'compose'];
  const v1 = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  if (v1.status === 0) return ['docker-compose'];
  throw new Error(
    'neither `docker compose` (the v2 plugin) nor `docker-compose` can validate docker-compose.yml: ' +
      `docker compose: ${(v2.stderr || v2.error?.message || '').trim() || `exit ${v2.status}`}; ` +
      `docker-compose: ${(v1.stderr || v1.error?.message || '').trim() || `exit ${v1.status}`}. ` +
      "scripts/setup.sh installs Debian's docker-compose (npm test runs it).",
  );
}

function composeConfig(env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const [cmd, ...pre] = composeCommand();
  // Only what compose needs from the outside: no stray RUNLET_* or COMPOSE_* of the developer's.
  const base = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };
  // --profile build: the v2 plugin leaves services of inactive profiles out of `config`.
  const r = spawnSync(cmd, [...pre, '-f', 'docker-compose.yml', '--profile', 'build', 'config'], {
    encoding: 'utf8',
    env: { ...base, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Service {
  image?: string;
  build?: { context: string; target?: string; args?: Record<string, string> };
  command?: string[] | string;
  environment?: Record<string, string | null>;
  volumes?: (string | { source?: string; target: string })[];
  networks?: Record<string, unknown> | string[];
  healthcheck?: { test: string[] | string };
  profiles?: string[];
  ports?: unknown[];
}

const text = (x: string[] | string | undefined) => (Array.isArray(x) ? x.join(' ') : (x ?? ''));
const target = (v: string | { target: string }) => (typeof v === 'string' ? v.split(':')[1] : v.target);
const source = (v: string | { source?: string }) => (typeof v === 'string' ? v.split(':')[0] : v.source);
const networksOf = (s: Service) => (Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {}));

interface Compose {
  services: Record<string, Service>;
  networks: Record<string, { name?: string; internal?: boolean }>;
}

/** The runlet service's environment as its process sees it: keys compose left unset (null) are absent. */
function runletEnv(compose: Compose): Record<string, string> {
  return Object.fromEntries(Object.entries(compose.services.runlet.environment ?? {}).filter((e): e is [string, string] => e[1] !== null));
}

describe('docker-compose.yml', () => {
  // Optional settings pass through from the environment; SMTP_HOST stands for them.
  const env = { ...SECRETS, SMTP_HOST: 'mail.example.com' };
  let result: ReturnType<typeof composeConfig>;
  let compose: Compose;
  beforeAll(() => {
    result = composeConfig(env);
    compose = parse(result.stdout) as Compose;
  });

  it('is valid for the compose tool', () => {
    expect(result.status, result.stderr).toBe(0);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['runlet', 'redis', 'app-redis', 'mongo', 'minio', 'minio-init']));
  });

  it('refuses to start without the secrets, naming the one that is missing', () => {
    const { RUNLET_TOKEN: _, ...rest } = SECRETS;
    const r = composeConfig(rest);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('set RUNLET_TOKEN');
  });

  it('runs the daemon with its Redis, the token and the host Docker socket', () => {
    const runlet = compose.services.runlet;
    expect(runlet.build).toMatchObject({ target: 'runlet' });
    expect(runlet.environment).toMatchObject({
      REDIS_URL: 'redis://redis:6379',
      RUNLET_TOKEN: 'test-token',
      SMTP_HOST: 'mail.example.com',
    });
    expect(runlet.volumes?.map((v) => [source(v), target(v)])).toContainEqual(['/var/run/docker.sock', '/var/run/docker.sock']);
    expect(networksOf(runlet).sort()).toEqual(['control', 'tasks']);
  });

  it('keeps run state in an append-only, non-evicting Redis that task containers cannot reach', () => {
    const redis = compose.services.redis;
    expect(text(redis.command)).toMatch(/--appendonly yes/);
    expect(text(redis.command)).toMatch(/--maxmemory-policy noeviction/);
    expect(redis.volumes?.map(target)).toContain('/data');
    expect(networksOf(redis)).toEqual(['control']);
    expect(compose.networks.control.internal).toBe(true);
  });

  it('runs MongoDB as a replica set that initiates itself', () => {
    const mongo = compose.services.mongo;
    expect(text(mongo.command)).toMatch(/--replSet rs0/);
    expect(text(mongo.healthcheck?.test)).toMatch(/rs\.initiate\(/);
    expect(compose.services.runlet.environment?.MONGO_URL).toBe('mongodb://mongo:27017/?replicaSet=rs0');
  });

  it('has MinIO for S3 and creates the buckets the tasks use', () => {
    expect(compose.services.minio.image).toMatch(/minio/);
    const init = compose.services['minio-init'];
    expect(text(init.command)).toMatch(/mc mb --ignore-existing/);
    const tasks = loadConfig('config/runlet.yaml', runletEnv(compose)).tasks;
    const buckets = [...new Set(Object.values(tasks).flatMap((t) => (t.env.S3_BUCKET ? [t.env.S3_BUCKET] : [])))];
    expect(buckets.sort()).toEqual(['app-starts-archive', 'weekly-tests']);
    expect(String(init.environment?.BUCKETS).split(' ').sort()).toEqual(buckets);
    for (const t of Object.values(tasks)) if (t.env.S3_BUCKET) expect(t.env.S3_ENDPOINT, t.name).toBe('http://minio:9000');
  });

  it('serves tests-api on MinIO: the scores bucket (what score-weekly-tests reads), the students’ keys from the environment, the functions port published on loopback, the example test seeded', () => {
    const tasks = loadConfig('config/runlet.yaml', runletEnv(compose)).tasks;
    const api = tasks['tests-api'];
    expect(api.http?.routes.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/v1/test', 'POST /api/v1/tests', 'POST /api/v1/test']);
    expect(api.env).toMatchObject({ S3_ENDPOINT: 'http://minio:9000', S3_BUCKET: tasks['score-weekly-tests'].env.S3_BUCKET });
    expect(api.env.AWS_SECRET_ACCESS_KEY).toBe('test-password');
    expect(api.http?.auth).toBe('apiKeys');
    expect(api.http?.apiKeys).toEqual({ ana: 'test-ana-key', ben: 'test-ben-key' });
    // docker-compose 1.x prints a port as "127.0.0.1:8081:8081/tcp"; the v2 plugin as { host_ip, published, target }.
    const ports = (compose.services.runlet.ports ?? []).map((p) =>
      typeof p === 'string' ? p : ((o) => `${o.host_ip}:${o.published}:${o.target}`)(p as Record<string, unknown>),
    );
    expect(ports.map((p) => p.replace(/\/tcp$/, ''))).toContain('127.0.0.1:8081:8081');
    const init = compose.services['minio-init'];
    expect(init.environment?.TESTS_BUCKET).toBe('weekly-tests');
    expect(init.volumes?.map((v) => [source(v)?.replace(/^.*\/tasks\//, 'tasks/'), target(v)])).toContainEqual([
      'tasks/tests-api/example',
      '/seed',
    ]);
    expect(existsSync('tasks/tests-api/example/answer-keys/quiz-1.json')).toBe(true);
  });

  it('refuses to start without the students’ API keys', () => {
    const { ANA_KEY: _, ...rest } = SECRETS;
    const r = composeConfig(rest);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('set ANA_KEY');
  });

  it('builds every image config/runlet.yaml names, and one per tasks/<name>/main.ts, build-only', () => {
    const built = new Map(
      Object.values(compose.services)
        .filter((s) => s.build && s.image)
        .map((s) => [s.image!, s]),
    );
    const tasks = loadConfig('config/runlet.yaml', runletEnv(compose)).tasks;
    for (const task of Object.values(tasks)) expect([...built.keys()], `image of task ${task.name}`).toContain(task.image);
    const taskDirs = readdirSync('tasks').filter((d) => existsSync(`tasks/${d}/main.ts`));
    expect(taskDirs.length).toBeGreaterThan(0);
    for (const name of taskDirs) {
      const s = built.get(`runlet/task-${name}:local`);
      expect(s, `a compose service building runlet/task-${name}:local`).toBeDefined();
      expect(s!.build).toMatchObject({ target: 'task', args: { TASK: name } });
      expect(s!.profiles).toEqual(['build']);
    }
  });

  describe('config/runlet.yaml with the environment compose gives the runlet service', () => {
    it('passes runlet validate', async () => {
      const r = await runCli(['validate', '-c', 'config/runlet.yaml'], runletEnv(compose));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });

    it('puts task containers on the compose network, where mongo, minio and app-redis resolve', () => {
      expect(compose.networks.tasks.name).toBe('runlet-tasks');
      const tasks = loadConfig('config/runlet.yaml', runletEnv(compose)).tasks;
      for (const task of Object.values(tasks)) expect(task.network, task.name).toBe('runlet-tasks');
      for (const service of ['mongo', 'minio', 'app-redis']) expect(networksOf(compose.services[service]), service).toContain('tasks');
      expect(tasks['bid-placed'].webhook?.secret).toBe('test-secret');
      expect(tasks['bid-placed'].queue?.redisUrl).toBe('redis://app-redis:6379/0');
      expect(tasks['score-weekly-tests'].env.SMTP_HOST).toBe('mail.example.com');
      expect(tasks['archive-app-starts'].env).toMatchObject({
        MONGO_URL: 'mongodb://mongo:27017/?replicaSet=rs0',
        ARCHIVE_SALT: 'test-salt',
      });
    });
  });
});
