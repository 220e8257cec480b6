import { describe, expect, it } from 'vitest';
import { describeChanges } from '../src/cli/reload.js';
import { diffConfigs } from '../src/config/diff.js';
import { LiveConfig } from '../src/config/live.js';
import { parseConfig } from '../src/config/load.js';
import { fixedAtStart } from '../src/http/server.js';

const load = (text: string) => parseConfig(text, '/tmp/runlet.yaml', {});

const BEFORE = load(`
defaults: { image: runlet/busybox:local }
tasks:
  kept: { command: ["true"] }
  edited: { command: ["true"], memory: 64m }
  gone: { command: ["true"] }
  hook: { webhook: { auth: none, maxBody: 64k } }
`);
const AFTER = load(`
defaults: { image: runlet/busybox:local }
pools: { heavy: { concurrency: 2 } }
tasks:
  kept: { command: ["true"] }
  edited: { command: ["true"], memory: 128m }
  fresh: { command: ["true"], webhook: { auth: none }, maxPayload: 4m }
  hook: { webhook: { auth: none, maxBody: 128k } }
`);

describe('what a reload changes', () => {
  it('names added, removed and changed tasks and changed top-level settings', () => {
    expect(diffConfigs(BEFORE, AFTER)).toEqual({ added: ['fresh'], removed: ['gone'], changed: ['edited', 'hook'], settings: ['pools'] });
    expect(diffConfigs(BEFORE, BEFORE)).toEqual({ added: [], removed: [], changed: [], settings: [] });
  });

  it('reports what the HTTP server fixed at start as needing a restart: new webhook routes, body and rate limits', () => {
    const paths = fixedAtStart(BEFORE, AFTER).map((n) => n.path);
    expect(paths).toEqual(['tasks.fresh.webhook', 'tasks.hook.webhook.maxBody', 'tasks.fresh.maxPayload']);
    expect(fixedAtStart(BEFORE, BEFORE)).toEqual([]);
  });

  it('runlet reload prints the changes and each setting that waits for a restart', () => {
    const text = describeChanges({ file: 'runlet.yaml', ...diffConfigs(BEFORE, AFTER), needsRestart: fixedAtStart(BEFORE, AFTER) });
    expect(text).toContain(
      'reloaded runlet.yaml: 1 task added (fresh), 1 removed (gone), 2 changed (edited, hook), settings changed: pools',
    );
    expect(text).toContain('needs a restart');
    expect(text).toContain('  tasks.fresh.webhook: POST /hooks/fresh has no route until a restart');
  });
});

describe('LiveConfig', () => {
  it('its view reads through to the config in place, so a module holding it sees a reload', () => {
    const live = new LiveConfig(BEFORE);
    const held = live.view;
    expect(held.tasks.edited?.memoryBytes).toBe(64 * 1024 * 1024);
    live.replace(AFTER);
    expect(held.tasks.edited?.memoryBytes).toBe(128 * 1024 * 1024);
    expect(Object.keys(held.tasks)).toEqual(Object.keys(AFTER.tasks));
    expect(held.pools).toBe(AFTER.pools);
  });
});
