import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, useDaemonProcess } from './helpers/process.js';

// `runlet runs` and `runlet retry` (the built CLI) against a daemon run as its own process.
const dir = mkdtempSync(join(tmpdir(), 'runlet-cli-retries-'));
const CONFIG = join(dir, 'runlet.yaml');
writeFileSync(
  CONFIG,
  `defaults: { image: runlet/busybox:local, memory: 16m, timeout: 20s }
tasks:
  doomed: { command: [sh, -c, 'echo "doomed attempt=$RUNLET_ATTEMPT payload=$RUNLET_PAYLOAD"; exit 3'], retries: { attempts: 2, delay: 200ms } }
  fine:   { command: [sh, -c, "echo fine"] }
`,
);
const PAYLOAD = join(dir, 'payload.json');
writeFileSync(PAYLOAD, '{"batch":12}');

const ctx = useDaemonProcess(CONFIG, 'cli-retries');

const cli = (...args: string[]) => runCli([...args, '-c', CONFIG], ctx.env, dir);

async function waitForEnd(id: string): Promise<{ status: string; logTail: string; retryOf: string | null }> {
  for (let i = 0; i < 200; i++) {
    const run = (await (await fetch(`http://127.0.0.1:${ctx.env.RUNLET_PORT}/api/runs/${id}`)).json()) as {
      status: string;
      logTail: string;
      retryOf: string | null;
    };
    if (!['queued', 'starting', 'running'].includes(run.status)) return run;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`run ${id} did not end`);
}

describe('runlet runs --dead and runlet retry', () => {
  let deadId: string;
  let fineId: string;

  it('run --wait follows a run through its retries to its last attempt', async () => {
    const res = await cli('run', 'doomed', '--wait', '--payload', PAYLOAD);
    expect(res.code).toBe(3);
    expect(res.stdout).toContain('doomed attempt=2 payload={"batch":12}');
    deadId = /run (\w+) failed/.exec(res.stderr)![1];
    const ok = await cli('run', 'fine', '--wait');
    expect(ok.code).toBe(0);
    fineId = /run (\w+) succeeded/.exec(ok.stderr)![1];
  });

  it('runs --dead prints one line per dead run, and only those', async () => {
    const res = await cli('runs', '--dead');
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^${deadId}\\s+doomed\\s+failed \\(dead\\)\\s+attempt 2/2\\s+\\d{4}-\\d\\d-\\d\\dT\\S+\\s+exit code 3$`),
    );
    const fine = await cli('runs', '--task', 'fine', '--status', 'succeeded');
    expect(fine.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^${fineId}\\s+fine\\s+succeeded\\s+attempt 1/1\\s`)),
    ]);
    const none = await cli('runs', '--task', 'fine', '--dead');
    expect(none).toMatchObject({ code: 0, stdout: '' });
    expect(none.stderr).toContain('no runs match');
  });

  it('retry <id> queues a new run with the same payload and prints its id', async () => {
    const res = await cli('retry', deadId);
    expect(res.code).toBe(0);
    const newId = res.stdout.trim();
    expect(newId).toMatch(/^[0-9A-Z]{26}$/);
    expect(newId).not.toBe(deadId);
    const run = await waitForEnd(newId);
    expect(run).toMatchObject({ status: 'failed', retryOf: deadId });
    expect(run.logTail).toContain('payload={"batch":12}');
    const dead = await cli('runs', '--dead');
    expect(
      dead.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/)[0]),
    ).toEqual([newId, deadId]);
  });

  it("retry of a run that does not exist fails with the API's reason", async () => {
    const res = await cli('retry', 'NOSUCHRUN');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('no run with id "NOSUCHRUN"');
  });
});
