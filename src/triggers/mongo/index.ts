import type { MongoTriggerConfig, TaskConfig } from '../../config/types.js';
import type { Trigger, TriggerDeps } from '../types.js';
import { MongoSource } from './mongo-source.js';
import type { ChangeSource } from './source.js';
import { StreamWatcher, type WatcherOptions } from './watcher.js';

/** Builds the source of a task whose mongo.url is set (tests pass an in-memory one). */
export type SourceFactory = (task: TaskConfig, mongo: MongoTriggerConfig & { url: string }) => ChangeSource;

const realSource: SourceFactory = (_task, mongo) => new MongoSource(mongo);

export interface MongoTriggerOptions {
  readonly sourceFor?: SourceFactory;
  readonly watcher?: WatcherOptions;
}

/** The change-stream watcher of a task with `mongo:`; one with an empty url only reports itself unconfigured. */
export function mongoTriggersOf(deps: TriggerDeps, task: TaskConfig, opts: MongoTriggerOptions = {}): Trigger[] {
  const m = task.mongo;
  if (!m) return [];
  const source = m.url !== undefined ? (opts.sourceFor ?? realSource)(task, { ...m, url: m.url }) : undefined;
  return [new StreamWatcher(deps, task, source, opts.watcher)];
}
