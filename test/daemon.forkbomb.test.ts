import { describe, expect, it } from 'vitest';
import { manualRequest } from '../src/triggers/manual.js';
import { useDaemon } from './helpers/daemon.js';

// A fork bomb in one task hits its pids limit; the daemon and other runs carry on.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 32m, timeout: 20s, killGrace: 1s }
tasks:
  # The main shell forks once, while it is the only process (\`bomb &\`), then execs sleep: it
  # never forks again, so once the pids limit is hit it still waits (and times out). Calling
  # \`bomb\` in the main shell made it fork both sides of the pipe itself, racing the first
  # side's children for the last pids: it lost now and then ("can't fork", exit 2: failed).
  bomb:   { pids: 32, timeout: 4s, command: [sh, -c, 'bomb() { bomb | bomb & }; bomb & exec sleep 30'] }
  honest: { command: [sh, -c, "sleep 1; echo still fine"] }
`;

const ctx = useDaemon(CONFIG);

describe('a fork bomb', () => {
  it('is contained by its pids limit while another run and the daemon carry on', async () => {
    const bomb = await ctx.daemon.submit(manualRequest('bomb', undefined));
    await ctx.daemon.events.once('run:started', (e) => e.runId === bomb.runId);
    const honest = await ctx.daemon.submit(manualRequest('honest', undefined));
    const ok = await ctx.daemon.waitForEnd(honest.runId);
    expect(ok.status).toBe('succeeded');
    expect(ok.logTail).toContain('still fine');
    expect((await fetch(`${ctx.daemon.url}/healthz`)).status).toBe(200);
    const b = await ctx.daemon.waitForEnd(bomb.runId);
    expect(b.status).toBe('timed_out');
    expect(b.logTail).toMatch(/can't fork/);
  });
});
