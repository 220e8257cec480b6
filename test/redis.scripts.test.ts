import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadScripts, luaDir, readScripts } from '../src/redis/scripts.js';

// The loader alone, on the files as they are and on broken copies: no Redis.

/** The header is the leading --[[ ... ]] block; the body is what Redis runs after it. */
const split = (lua: string) => {
  const end = lua.indexOf(']]');
  return { header: lua.slice(0, end), body: lua.slice(end) };
};

describe('redis/lua: one file per script, a header, includes resolved', () => {
  it('loads every script with its includes in place, once each', () => {
    const scripts = loadScripts();
    expect(scripts).toHaveLength(20);
    for (const s of scripts) {
      expect(s.lua).not.toContain('@include');
      for (const fn of ['member', 'guardStatus', 'statusChange', 'writeStatus', 'recordEnded', 'publishChange', 'deleteIfEnded']) {
        expect(s.lua.split(`local function ${fn}(`).length, `${s.name}: ${fn} defined twice`).toBeLessThanOrEqual(2);
      }
    }
    expect(scripts.find((s) => s.name === 'transition')!.lua).toContain('local function guardStatus(');
  });

  it('each header names every key of its count; the body names keys only in `local x = KEYS[n]` lines', () => {
    for (const s of loadScripts()) {
      const { header, body } = split(s.lua);
      for (let i = 1; i <= s.numberOfKeys; i++) expect(header, s.name).toContain(`KEYS[${i}]`);
      expect(header, s.name).toMatch(/Output/);
      const used = [...body.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
      expect(Math.max(...used), s.name).toBe(s.numberOfKeys);
      for (const line of body.split('\n').filter((l) => l.includes('KEYS['))) expect(line, s.name).toMatch(/^local \w+ = KEYS\[\d+\]$/);
    }
  });
});

describe('readScripts refuses a broken folder at load, not at the first call', () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));
  const copy = () => {
    dir = mkdtempSync(join(tmpdir(), 'runlet-lua-'));
    cpSync(luaDir(), dir, { recursive: true });
    return dir;
  };

  it('an include that includes itself back', () => {
    const d = copy();
    appendFileSync(join(d, 'includes', 'member.lua'), '\n--- @include "guardStatus"\n');
    expect(() => readScripts(d)).toThrow(/includes (member|guardStatus) → \w+ → (member|guardStatus), a cycle/);
  });

  it('an include that does not exist', () => {
    const d = copy();
    appendFileSync(join(d, 'setWaitReason-1.lua'), '\n--- @include "nowhere"\n');
    expect(() => readScripts(d)).toThrow(/setWaitReason-1.lua includes "nowhere"/);
  });

  it('a script without its typed method', () => {
    const d = copy();
    writeFileSync(join(d, 'extra-1.lua'), 'return 1\n');
    expect(() => readScripts(d)).toThrow(/extra-1.lua is not in NAMES/);
  });
});
