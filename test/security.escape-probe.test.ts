import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunletConfig } from '../src/config/types.js';
import { manualRequest } from '../src/triggers/manual.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { requireImages } from './helpers/docker.js';
import { freePort } from './helpers/ports.js';
import { startRedisServer, startTestRedis, type RedisProcess } from './helpers/redis.js';

/**
 * The escape probe (tasks/escape-probe) run by a real daemon with the isolation defaults
 * untouched: each wall a run must not get through is one line of its output, asserted one
 * by one, so a failure names the wall that fell.
 */
const PROBE_IMAGE = 'runlet/escape-probe:local';
const TASK_YAML = readFileSync(new URL('../tasks/escape-probe/runlet.yaml', import.meta.url), 'utf8');

let daemon: TestDaemon;
let config: RunletConfig;
let embedded: Awaited<ReturnType<typeof startTestRedis>>;
let external: RedisProcess;
let control: Server;
let lines: string[] = [];
/** The same probe in a task that opted out (user: root, readOnly: false): the walls it gave up must show as FAIL. */
let optOutLines: string[] = [];
const OPT_OUT_YAML = `
  opted-out:
    image: ${PROBE_IMAGE}
    user: root
    readOnly: false
`;

async function probeLines(task: string): Promise<string[]> {
  const { runId } = await daemon.submit(manualRequest(task, undefined));
  const run = await daemon.waitForEnd(runId, 120_000);
  const found = (run.logTail ?? '').split('\n').filter((l) => /^(PASS|FAIL) /.test(l));
  expect(found.length, `the probe printed no PASS/FAIL lines; its log:\n${run.logTail}`).toBeGreaterThan(0);
  return found;
}
let apiPort: number;

/** A TCP server on every interface that answers anyone: what the probe must reach, to show a refusal is a wall. */
async function startControl(): Promise<{ server: Server; port: number }> {
  const port = await freePort('0.0.0.0');
  const server = createServer((socket) => socket.end('hello from the host\n'));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '0.0.0.0', resolve));
  return { server, port };
}

beforeAll(async () => {
  await requireImages(PROBE_IMAGE);
  [embedded, external] = await Promise.all([startTestRedis(), startRedisServer()]);
  const c = await startControl();
  control = c.server;
  apiPort = await freePort();
  const env = {
    PROBE_TCP: `redis=127.0.0.1:${external.port} api=127.0.0.1:${apiPort}`,
    PROBE_CONTROL: `host.docker.internal:${c.port}`,
    PROBE_PATHS: embedded.path,
  };
  // No token: the ops API listens on 127.0.0.1 only, its default.
  config = configFrom(TASK_YAML + OPT_OUT_YAML, env);
  daemon = await startTestDaemon({ config, redisUrl: embedded.url, port: apiPort });
  lines = await probeLines('escape-probe');
  optOutLines = await probeLines('opted-out');
}, 180_000);

afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  control?.close();
  await Promise.all([embedded?.stopAndClean(), external?.stop()]);
});

/** The probe's line for `check` (its first word after PASS/FAIL): it must be there and say PASS. */
function wall(check: string): void {
  const found = lines.filter((l) => l.split(' ')[1] === check);
  expect(found, `no "${check}" line in the probe's output:\n${lines.join('\n')}`).not.toHaveLength(0);
  for (const line of found) expect(line, `the wall "${check}" fell`).toMatch(/^PASS /);
}

describe('the escape probe, run with the isolation defaults', () => {
  it('the daemon ran it with the defaults: not root, read-only root', async () => {
    const task = config.tasks['escape-probe']!;
    expect(task.user).toBe('65534:65534');
    expect(task.readOnly).toBe(true);
    const api = (await (await fetch(`${daemon.url}/api/tasks/escape-probe`)).json()) as { isolation: unknown };
    expect(api.isolation).toEqual({ user: '65534:65534', runsAsRoot: false, readOnly: true, network: 'bridge' });
  });

  it('runs as a user that is not root', () => wall('not-root'));
  it('has no-new-privileges (NoNewPrivs: 1)', () => wall('no-new-privileges'));
  it('has no capabilities: CapEff, CapPrm and CapBnd are all 0', () => {
    wall('no-capabilities');
    expect(lines.filter((l) => l.startsWith('PASS no-capabilities'))).toHaveLength(3);
  });
  it('cannot write to / nor /etc', () => {
    wall('read-only-root');
    wall('read-only-etc');
  });
  it('can write /runlet and /tmp, and /tmp only up to its size', () => {
    wall('runlet-writable');
    wall('tmp-writable');
    wall('tmp-size-limited');
  });
  it('finds no docker.sock and no unix socket at all; the Redis socket is not there', () => {
    wall('no-docker-socket');
    wall('no-unix-sockets');
    wall('host-path-absent');
  });
  it('can connect to a port the host opens to containers (the control)', () => wall('control-reachable'));
  it("cannot reach the loopback Redis, on 127.0.0.1 nor on the host's bridge address", () => {
    wall('unreachable-redis');
    expect(lines.filter((l) => l.startsWith('PASS unreachable-redis'))).toHaveLength(2);
  });
  it("cannot reach the ops API, on 127.0.0.1 nor on the host's bridge address", () => {
    wall('unreachable-api');
    expect(lines.filter((l) => l.startsWith('PASS unreachable-api'))).toHaveLength(2);
  });
  it('a fork loop ends at the pids limit', () => wall('pids-limit'));
  it('no wall fell', () => expect(lines.filter((l) => l.startsWith('FAIL '))).toEqual([]));
});

describe('the same probe in a task that opted out (user: root, readOnly: false)', () => {
  it('shows the walls it gave up as FAIL, and keeps the rest', () => {
    expect(optOutLines).toContain('FAIL not-root uid=0');
    expect(optOutLines).toContain('FAIL read-only-root wrote /escape-probe');
    expect(optOutLines).toContain('FAIL read-only-etc wrote /etc/escape-probe');
    // Root without capabilities: CapEff 0 and NoNewPrivs still hold.
    expect(optOutLines.filter((l) => l.startsWith('PASS no-capabilities'))).toHaveLength(3);
    expect(optOutLines.some((l) => l.startsWith('PASS no-new-privileges'))).toBe(true);
  });
});
