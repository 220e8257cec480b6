import type { RunletConfig } from './types.js';

/** A setting of the new file that the running daemon cannot take on: it needs a restart. */
export interface NeedsRestart {
  /** Dotted key path, as `runlet validate` names keys (`tasks.bid.webhook`). */
  readonly path: string;
  /** What stays as it was until the restart, and why. */
  readonly why: string;
}

/** What a reload changed: the report `runlet reload` prints and the daemon logs. */
export interface ConfigChanges {
  /** The file as shown to the user. */
  readonly file: string;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Tasks whose settings differ in any way. */
  readonly changed: readonly string[];
  /** Top-level settings that differ: `pools`, `node`, `retention`, `stuck`, `alerts`. */
  readonly settings: readonly string[];
  /** Settings of the new file that wait for a restart (see http/server.ts `fixedAtStart`). */
  readonly needsRestart: readonly NeedsRestart[];
}

const SETTINGS = ['pools', 'node', 'retention', 'stuck', 'alerts'] as const satisfies readonly (keyof RunletConfig)[];

/**
 * Which tasks and settings differ between two loaded configs. Both are built by the same
 * code from plain data (config/resolve.ts), so equal settings serialise equally.
 */
export function diffConfigs(before: RunletConfig, after: RunletConfig): Omit<ConfigChanges, 'file' | 'needsRestart'> {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const names = (c: RunletConfig) => Object.keys(c.tasks);
  return {
    added: names(after).filter((n) => !before.tasks[n]),
    removed: names(before).filter((n) => !after.tasks[n]),
    changed: names(after).filter((n) => before.tasks[n] && !same(before.tasks[n], after.tasks[n])),
    settings: SETTINGS.filter((k) => !same(before[k], after[k])),
  };
}
