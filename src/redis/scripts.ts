import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientContext, Redis, Result } from 'ioredis';

/**
 * Every Lua script runlet runs, one file each in `lua/` (`<name>-<numKeys>.lua`, its header
 * naming KEYS, ARGV and every result), shared parts in `lua/includes/`, pulled in by a line
 * `--- @include "<name>"`. The scripts run atomically in Redis, which is what makes the
 * dedupe claim, the status guard and the stream fences hold with several daemons on one
 * Redis; the callers (runs/store.ts, triggers/mongo/) say why each one is needed.
 */

/** What a script's 0/1/-1 answer means; each script's header says which of them it returns. */
export enum ScriptCode {
  /** Written (created, acquired, renewed, released, stored). */
  Applied = 1,
  /** Nothing written: a guard said no (status, attempt, fence, lease owner, dedupe key). */
  Refused = 0,
  /** Nothing written: the run has no record. */
  NoSuchRun = -1,
}

/** Each script by its file name without the key count; it is called as `runlet<Name>`. */
const NAMES = [
  'createRun',
  'transition',
  'claimRun',
  'fencedTransition',
  'adoptRun',
  'endAttempt',
  'writeLogTail',
  'setWaitReason',
  'trimTaskRuns',
  'trimAgedRuns',
  'acquireLease',
  'renewLease',
  'releaseLease',
  'storeCursor',
  'resetStream',
  'writeStreamState',
  'setPause',
  'recordAgain',
  'admitRun',
  'freeSlot',
] as const;
export type ScriptName = (typeof NAMES)[number];

export interface Script {
  readonly name: ScriptName;
  /** The command it is defined as on a connection. */
  readonly command: `runlet${Capitalize<ScriptName>}`;
  readonly numberOfKeys: number;
  /** The source with its includes resolved, as Redis runs it. */
  readonly lua: string;
}

type Arg = string | number;

declare module 'ioredis' {
  // Typed by hand from each script's header; registerScripts defines them on a connection.
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    /** createRun-9.lua: { run id, Applied (created) | Refused (the dedupe key names that run) }. */
    runletCreateRun(
      ...args: [
        dedupeKey: string,
        runKey: string,
        transitionsKey: string,
        allRunsKey: string,
        taskRunsKey: string,
        outboxKey: string,
        endedKey: string,
        cronMarkerKey: string,
        payloadKey: string,
        ...argv: Arg[],
      ]
    ): Result<[runId: string, code: ScriptCode.Applied | ScriptCode.Refused], Context>;
    /** claimRun-3.lua */
    runletClaimRun(...args: [runKey: string, transitionsKey: string, endedKey: string, ...argv: Arg[]]): Result<ScriptCode, Context>;
    /** fencedTransition-3.lua */
    runletFencedTransition(
      ...args: [runKey: string, transitionsKey: string, endedKey: string, ...argv: Arg[]]
    ): Result<ScriptCode, Context>;
    /** adoptRun-1.lua */
    runletAdoptRun(
      runKey: string,
      attempt: Arg,
      expectedClaim: string,
      claim: string,
      daemon: string,
      statuses: string,
    ): Result<ScriptCode, Context>;
    /** transition-3.lua */
    runletTransition(...args: [runKey: string, transitionsKey: string, endedKey: string, ...argv: Arg[]]): Result<ScriptCode, Context>;
    /** endAttempt-7.lua */
    runletEndAttempt(
      ...args: [
        runKey: string,
        transitionsKey: string,
        attemptsKey: string,
        outboxKey: string,
        endedKey: string,
        logsKey: string,
        outputKey: string,
        ...argv: Arg[],
      ]
    ): Result<ScriptCode, Context>;
    /** writeLogTail-2.lua */
    runletWriteLogTail(runKey: string, logsKey: string, attempt: Arg, tail: string, bytes: Arg, claim: string): Result<ScriptCode, Context>;
    /** setWaitReason-1.lua */
    runletSetWaitReason(runKey: string, reason: string, at: Arg, node: string): Result<ScriptCode.Applied | ScriptCode.Refused, Context>;
    /** trimTaskRuns-2.lua: the number of runs deleted. */
    runletTrimTaskRuns(...args: [taskRunsKey: string, allRunsKey: string, ...argv: Arg[]]): Result<number, Context>;
    /** trimAgedRuns-1.lua: [deleted, looked at]. */
    runletTrimAgedRuns(...args: [allRunsKey: string, ...argv: Arg[]]): Result<[deleted: number, looked: number], Context>;
    /** acquireLease-2.lua: [Applied, fence] or [Refused, the holder's remaining ms]. */
    runletAcquireLease(
      leaseKey: string,
      fenceKey: string,
      holder: string,
      leaseMs: Arg,
    ): Result<[code: ScriptCode.Applied | ScriptCode.Refused, n: number], Context>;
    /** renewLease-1.lua */
    runletRenewLease(leaseKey: string, value: string, leaseMs: Arg): Result<ScriptCode.Applied | ScriptCode.Refused, Context>;
    /** releaseLease-2.lua */
    runletReleaseLease(leaseKey: string, stateKey: string, value: string): Result<ScriptCode.Applied | ScriptCode.Refused, Context>;
    /** storeCursor-3.lua */
    runletStoreCursor(
      ...args: [tokenKey: string, fenceKey: string, stateKey: string, ...argv: Arg[]]
    ): Result<ScriptCode.Applied | ScriptCode.Refused, Context>;
    /** resetStream-4.lua: the new fence. */
    runletResetStream(tokenKey: string, leaseKey: string, fenceKey: string, stateKey: string, now: Arg): Result<number, Context>;
    /** setPause-2.lua: [Applied, the change's time, paused] or [Refused, the time of the newer change Redis holds, its paused]. */
    runletSetPause(
      pausedKey: string,
      timesKey: string,
      task: string,
      paused: '1' | '0',
      at: Arg,
    ): Result<[code: ScriptCode.Applied | ScriptCode.Refused, at: number, paused: 0 | 1], Context>;
    /** recordAgain-4.lua */
    runletRecordAgain(
      ...args: [runKey: string, transitionsKey: string, allRunsKey: string, taskRunsKey: string, ...argv: Arg[]]
    ): Result<ScriptCode.Applied | ScriptCode.Refused, Context>;
    /** admitRun-4.lua: Applied (the run holds a slot) or Refused (parked). */
    runletAdmitRun(
      ...args: [
        slotsKey: string,
        parkedKey: string,
        slottedKey: string,
        parkedTasksKey: string,
        runId: string,
        limit: Arg,
        now: Arg,
        task: string,
      ]
    ): Result<ScriptCode.Applied | ScriptCode.Refused, Context>;
    /** freeSlot-5.lua: the run ids admitted. */
    runletFreeSlot(
      ...args: [
        slotsKey: string,
        parkedKey: string,
        slottedKey: string,
        parkedTasksKey: string,
        outboxKey: string,
        runId: string,
        limit: Arg,
        now: Arg,
        task: string,
      ]
    ): Result<string[], Context>;
    /** writeStreamState-2.lua */
    runletWriteStreamState(
      ...args: [stateKey: string, fenceKey: string, fence: string, ...fieldsAndValues: string[]]
    ): Result<ScriptCode.Applied | ScriptCode.Refused, Context>;
  }
}

const registered = new WeakSet<Redis>();

/**
 * Defines every script on `redis` (once per connection; later calls return at once).
 * defineCommand sends EVALSHA and falls back to EVAL only when Redis has not cached the
 * script (a fresh or flushed server), so the source crosses the wire once, not per call.
 */
export function registerScripts(redis: Redis): Redis {
  if (registered.has(redis)) return redis;
  for (const s of loadScripts()) redis.defineCommand(s.command, { lua: s.lua, numberOfKeys: s.numberOfKeys });
  registered.add(redis);
  return redis;
}

let loaded: readonly Script[] | undefined;

/** The scripts, read from disk on first use and kept. */
export function loadScripts(): readonly Script[] {
  return (loaded ??= readScripts(luaDir()));
}

/**
 * The folder of the .lua files: next to this module when it runs as TypeScript, else
 * `src/redis/lua` in the first directory up that holds the package (the daemon runs from
 * dist/, and tsc copies no .lua files; as for the dashboard's assets, reading the source
 * tree spares a copy step that a fresh clone could get wrong).
 */
export function luaDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'lua'))) return join(here, 'lua');
  for (let dir = here; ;) {
    const lua = join(dir, 'src', 'redis', 'lua');
    if (existsSync(join(dir, 'package.json')) && existsSync(lua)) return lua;
    const up = dirname(dir);
    if (up === dir) throw new Error(`redis scripts: no src/redis/lua in any directory above ${here}, so no run can be recorded`);
    dir = up;
  }
}

const FILE = /^([A-Za-z]+)-(\d+)\.lua$/;

export function readScripts(dir: string): Script[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.lua'));
  const byName = new Map(files.map((f) => [FILE.exec(f)?.[1] ?? f, f]));
  const unknown = files.filter((f) => !NAMES.includes(FILE.exec(f)?.[1] as ScriptName));
  const missing = NAMES.filter((n) => !byName.has(n));
  // A file without its typed method, or a method without its file, would only fail when called.
  if (unknown.length > 0 || missing.length > 0 || files.length !== NAMES.length) {
    throw new Error(
      `redis scripts in ${dir}: ${[...unknown.map((f) => `${f} is not in NAMES (src/redis/scripts.ts)`), ...missing.map((n) => `no ${n}-<numKeys>.lua`)].join('; ') || 'a name is used twice'}`,
    );
  }
  return NAMES.map((name) => {
    const file = byName.get(name)!;
    return {
      name,
      command: `runlet${name[0]!.toUpperCase()}${name.slice(1)}` as Script['command'],
      numberOfKeys: Number(FILE.exec(file)![2]),
      lua: withIncludes(readFileSync(join(dir, file), 'utf8'), join(dir, 'includes'), file, new Set(), []),
    };
  });
}

const INCLUDE = /^--- @include "([A-Za-z]+)"[ \t]*$/gm;

/**
 * Replaces each include line by that include's text, its own includes resolved first. Each
 * include lands once per script, where it is first named: two includes that both need
 * `member` share one definition.
 */
function withIncludes(source: string, dir: string, file: string, seen: Set<string>, stack: readonly string[]): string {
  return source.replace(INCLUDE, (_line, name: string) => {
    if (stack.includes(name)) throw new Error(`redis scripts: ${file} includes ${[...stack, name].join(' → ')}, a cycle`);
    if (seen.has(name)) return '';
    seen.add(name);
    const path = join(dir, `${name}.lua`);
    if (!existsSync(path)) throw new Error(`redis scripts: ${file} includes "${name}", but there is no ${path}`);
    return withIncludes(readFileSync(path, 'utf8'), dir, file, seen, [...stack, name]);
  });
}
