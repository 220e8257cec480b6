import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, useDaemonProcess } from './helpers/process.js';
import { Redis } from 'ioredis';

const dir = mkdtempSync(join(tmpdir(), 'runlet-cli-'));
const write = (name: string, text: string) => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};

const GOOD = write(
  'good.yaml',
  `defaults: { image: runlet/busybox:local, memory: 16m, timeout: 20s }
tasks:
  nightly: { schedule: "0 3 * * *", timezone: Europe/Vienna, command: [sh, -c, "echo nightly"] }
  fails:   { command: [sh, -c, "echo going down; exit 7"] }
  fine:    { command: [sh, -c, "echo all good"] }
`,
);

describe('runlet validate', () => {
  it('exits 1 and prints every error with file:line:col and key', async () => {
    const bad = write(
      'bad.yaml',
      `defaults: { memory: lots }
tasks:
  sync:
    image: runlet/busybox:local
    shedule: "* * * * *"
    timeout: soon
`,
    );
    const { code, stderr } = await runCli(['validate', '-c', bad], {}, dir);
    expect(code).toBe(1);
    expect(stderr).toContain('bad.yaml:1:21 defaults.memory: expected a size like "512m", got "lots"');
    expect(stderr).toContain('bad.yaml:5:5 tasks.sync.shedule: unknown key "shedule" (did you mean "schedule"?)');
    expect(stderr).toContain('bad.yaml:6:14 tasks.sync.timeout:');
  });

  it('on success lists each task with its triggers and next three fire times in its zone', async () => {
    const { code, stdout } = await runCli(['validate', '-c', GOOD], {}, dir);
    expect(code).toBe(0);
    expect(stdout).toContain('ok, 3 tasks');
    expect(stdout).toContain('cron  "0 3 * * *" in Europe/Vienna; next:');
    expect(stdout.match(/ 03:00:00 .* \(Europe\/Vienna\)/g)).toHaveLength(3);
  });

  it("shows each task's isolation, an opt-out from the defaults in capitals", async () => {
    const file = write(
      'isolation.yaml',
      `defaults: { image: runlet/busybox:local }
tasks:
  plain:  { command: [id, -u] }
  asroot: { user: root, readOnly: false, command: [id, -u] }
`,
    );
    const { code, stdout } = await runCli(['validate', '-c', file], {}, dir);
    expect(code).toBe(0);
    expect(stdout).toMatch(/plain .*\n(.*\n)*? {2}isolation {2}runs as 65534:65534, read-only root filesystem, network bridge/);
    expect(stdout).toContain('  isolation  runs AS ROOT (user: root), WRITABLE root filesystem (readOnly: false), network bridge');
  });

  it('names a missing config file', async () => {
    const { code, stderr } = await runCli(['validate', '-c', join(dir, 'nope.yaml')], {}, dir);
    expect(code).toBe(1);
    expect(stderr).toMatch(/cannot read the config file: no such file/);
  });
});

describe('arguments: a file after the command, and nothing dropped silently', () => {
  const BAD = write('bad-arg.yaml', 'tasks:\n  x: { image: runlet/busybox:local, shedule: "* * * * *" }\n');

  it('validate FILE checks that file, not config/runlet.yaml', async () => {
    const bad = await runCli(['validate', BAD], {}, dir);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('bad-arg.yaml:2:37 tasks.x.shedule: unknown key "shedule"');
    const good = await runCli(['validate', GOOD], {}, dir);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain(`${GOOD}: ok, 3 tasks`);
  });

  it('start FILE loads that file (and stops at its errors before starting anything)', async () => {
    const { code, stderr } = await runCli(['start', BAD], {}, dir);
    expect(code).toBe(1);
    expect(stderr).toContain('bad-arg.yaml:2:37 tasks.x.shedule');
  });

  it('-c and a FILE that disagree, an extra argument, or an option the command does not take: usage error, exit 2', async () => {
    const both = await runCli(['validate', '-c', GOOD, BAD], {}, dir);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('two config files given');
    const extra = await runCli(['validate', GOOD, 'more.yaml'], {}, dir);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain('usage: runlet validate [FILE]: unexpected argument "more.yaml"');
    const status = await runCli(['status', 'now'], {}, dir);
    expect(status.code).toBe(2);
    expect(status.stderr).toContain('unexpected argument "now"');
    const option = await runCli(['validate', GOOD, '--wait'], {}, dir);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('--wait is not an option of "validate"');
    const missing = await runCli(['logs'], {}, dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('usage: runlet logs <run-id>: <run-id> is missing');
  });

  it('--help says that start and validate take the file', async () => {
    const { code, stdout } = await runCli(['--help'], {}, dir);
    expect(code).toBe(0);
    expect(stdout).toContain('validate [FILE]');
    expect(stdout).toContain('start [FILE]');
  });
});

describe('runlet run / status / logs against a running daemon', () => {
  const ctx = useDaemonProcess(GOOD, 'cli-node');

  it("run --wait prints the output and exits with the run's exit code", async () => {
    const ok = await runCli(['run', 'fine', '--wait', '-c', GOOD], ctx.env, dir);
    expect(ok.stdout).toContain('all good');
    expect(ok.stderr).toMatch(/succeeded in \d+\.\d+s, exit code 0/);
    expect(ok.code).toBe(0);
    const bad = await runCli(['run', 'fails', '--wait', '-c', GOOD], ctx.env, dir);
    expect(bad.stdout).toContain('going down');
    expect(bad.stderr).toMatch(/failed in .*exit code 7/);
    expect(bad.code).toBe(7);
  });

  it('run without --wait prints the run id; logs prints its output; status lists tasks', async () => {
    const queued = await runCli(['run', 'fine', '-c', GOOD], ctx.env, dir);
    expect(queued.code).toBe(0);
    const id = queued.stdout.trim();
    expect(id).toMatch(/^[0-9A-Z]{26}$/);
    let logs = '';
    for (let i = 0; i < 100 && !logs.includes('all good'); i++) {
      logs = (await runCli(['logs', id], ctx.env, dir)).stdout;
      if (!logs.includes('all good')) await new Promise((r) => setTimeout(r, 200));
    }
    expect(logs).toContain('all good');
    const status = await runCli(['status', '-c', GOOD], ctx.env, dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/nightly\s+20\d\d-/);
    expect(status.stdout).toContain('node cli-node');
  });

  it('a task that is not configured gets a did-you-mean, and nothing is queued', async () => {
    const res = await runCli(['run', 'fien', '-c', GOOD], ctx.env, dir);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('no task named "fien"');
    expect(res.stderr).toContain('did you mean "fine"?');
  });
});

describe('runlet cancel', () => {
  const LONG = write(
    'long.yaml',
    'defaults: { image: runlet/busybox:local, memory: 16m, timeout: 60s, killGrace: 1s }\ntasks:\n  long: { command: [sleep, "30"] }\n',
  );
  const ctx = useDaemonProcess(LONG, 'cancel-node');

  it('stops a running run, which ends cancelled; a second cancel says it already ended', async () => {
    const id = (await runCli(['run', 'long', '-c', LONG], ctx.env, dir)).stdout.trim();
    const r = new Redis({ path: ctx.redis.path });
    for (let i = 0; i < 100 && (await r.hget(`runlet:run:${id}`, 'status')) !== 'running'; i++)
      await new Promise((res) => setTimeout(res, 100));
    const first = await runCli(['cancel', id], ctx.env, dir);
    expect(first.stdout.trim()).toBe(`${id} cancelling`);
    expect(first.code).toBe(0);
    for (let i = 0; i < 100 && (await r.hget(`runlet:run:${id}`, 'status')) === 'running'; i++)
      await new Promise((res) => setTimeout(res, 100));
    expect(await r.hget(`runlet:run:${id}`, 'status')).toBe('cancelled');
    r.disconnect();
    const again = await runCli(['cancel', id], ctx.env, dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`run ${id} already ended as cancelled`);
  });
});
