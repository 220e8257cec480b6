import type { Logger } from 'pino';
import { diffConfigs, type ConfigChanges, type NeedsRestart } from '../config/diff.js';
import { ConfigError, displayFile, formatIssue } from '../config/errors.js';
import type { LiveConfig } from '../config/live.js';
import type { RunletConfig } from '../config/types.js';
import type { RunningTriggers } from '../triggers/running.js';

export interface ReloadParts {
  readonly live: LiveConfig;
  readonly logger: Logger;
  /** Reads and checks the file again; throws ConfigError with every problem in it. */
  read(): RunletConfig;
  /** What of `next` waits for a restart (http/server.ts fixedAtStart). */
  fixedAtStart(next: RunletConfig): NeedsRestart[];
  /** Builds the `build:` images of `next`; a failure refuses the reload. */
  build(next: RunletConfig): Promise<void>;
  readonly triggers: RunningTriggers;
  /** Brings workers, queue limits, usage notes and alerts in line with the config now current; idempotent. */
  apply(): Promise<void>;
}

/**
 * SIGHUP and `runlet reload`: the daemon reads its config file again and takes on what
 * changed, one reload at a time.
 *
 * Nothing changes until the file is valid and its images are built: an invalid file is
 * refused with every error (logged, and thrown to the caller), and the old config keeps
 * running untouched. Then, in order:
 *  1. the triggers of removed tasks and of tasks whose triggers changed are stopped (and
 *     chaining, if its followers changed), so nothing fires for a task being removed;
 *  2. the config is replaced: whatever reads it per use (a run's claim and limits,
 *     admission, policies, the API) sees the new one from here. Runs in progress keep the
 *     TaskConfig they started with, so they end with their old limits;
 *  3. workers (a removed task's stops taking runs, an added task's starts), task
 *     concurrency, alerts;
 *  4. the stopped triggers are made again from the new config, schedules resuming from the
 *     moment the old timers stopped (no tick is lost or fired twice across the swap).
 * Steps 3 and 4 bring things in line with the current config rather than apply a diff, so
 * if one fails (Redis unreachable) the next reload, even of the same file, completes it.
 */
export class Reloader {
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly parts: ReloadParts) {}

  reload(): Promise<ConfigChanges> {
    const next = this.chain.then(() => this.once());
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** At shutdown: refuses new reloads and waits for one in progress. */
  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
  }

  private async once(): Promise<ConfigChanges> {
    const { live, logger, triggers } = this.parts;
    if (this.closed) throw new Error('the daemon is stopping');
    const began = Date.now();
    let next: RunletConfig;
    try {
      next = this.parts.read();
    } catch (err) {
      if (err instanceof ConfigError)
        logger.error(
          { file: displayFile(live.current.file), errors: err.issues.map(formatIssue) },
          `config reload refused, the daemon goes on with the config it had:\n${err.message}`,
        );
      throw err;
    }
    const changes: ConfigChanges = {
      file: displayFile(next.file),
      ...diffConfigs(live.current, next),
      needsRestart: this.parts.fixedAtStart(next),
    };
    try {
      await this.parts.build(next);
    } catch (err) {
      logger.error(
        { err },
        'config reload refused: an image of a build: task could not be built; the daemon goes on with the config it had',
      );
      throw err;
    }
    const since = Date.now();
    await triggers.stopOutdated(next);
    live.replace(next);
    try {
      await this.parts.apply();
    } catch (err) {
      logger.error({ err }, 'the new config is in place but applying it failed part-way; reload again to complete it');
      throw err;
    } finally {
      // Also after a failed step: what stopped above must fire again under the new config.
      await triggers.startMissing(since);
    }
    const { file, added, removed, changed, settings, needsRestart } = changes;
    logger.info({ file, added, removed, changed, settings, triggers: triggers.names(), ms: Date.now() - began }, 'config reloaded');
    for (const n of needsRestart) logger.warn({ key: n.path }, `${n.path} needs a restart (the reload applied the rest): ${n.why}`);
    return changes;
  }
}
