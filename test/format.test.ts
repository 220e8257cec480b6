import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '..');

describe('the code is formatted by prettier with the repo config', () => {
  it('npm run format:check finds nothing to change (npm run format fixes it)', () => {
    const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts[
      'format:check'
    ]!;
    expect(script).toMatch(/^prettier --check /);
    const r = spawnSync(
      join(ROOT, 'node_modules/.bin/prettier'),
      script
        .split(' ')
        .slice(1)
        .map((a) => a.replace(/^"|"$/g, '')),
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(r.error).toBeUndefined();
    expect(
      `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.startsWith('[warn]')),
      'run `npm run format`',
    ).toEqual([]);
    expect(r.status).toBe(0);
  }, 60_000);
});
