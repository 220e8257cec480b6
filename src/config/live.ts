import type { RunletConfig } from './types.js';

/**
 * The config a daemon runs now, replaced as a whole when it reloads its file.
 *
 * Most modules are handed `config` once, when they are made, and read `config.tasks[name]`
 * each time they need a task. `view` is a RunletConfig whose every property reads through
 * to the current config, so those modules see a reload without knowing of it: a run claimed
 * after the reload gets the task's new limits, a run already going keeps the TaskConfig it
 * started with. What a module derives once when it is made (a timer from a schedule, a
 * consumer group from the followers) is made again by the reload (daemon/reload.ts).
 */
export class LiveConfig {
  private value: RunletConfig;
  readonly view: RunletConfig;

  constructor(initial: RunletConfig) {
    this.value = initial;
    const read = () => this.value;
    // Every key of RunletConfig, or this does not compile: a new key can't be left stale.
    this.view = Object.freeze({
      get file() {
        return read().file;
      },
      get retention() {
        return read().retention;
      },
      get node() {
        return read().node;
      },
      get pools() {
        return read().pools;
      },
      get tasks() {
        return read().tasks;
      },
      get stuck() {
        return read().stuck;
      },
      get alerts() {
        return read().alerts;
      },
    } satisfies { [K in keyof RunletConfig]: RunletConfig[K] });
  }

  /** The config itself (not the view): what a reload compares the file's new content with. */
  get current(): RunletConfig {
    return this.value;
  }

  replace(next: RunletConfig): void {
    this.value = next;
  }
}
