import { afterTriggers } from './after.js';
import { mongoTriggers } from './mongo/index.js';
import { queueTriggers } from './queue.js';
import type { Trigger, TriggerDeps } from './types.js';

/** Every event trigger the config asks for (cron and webhooks are wired separately). */
export function eventTriggers(deps: TriggerDeps): Trigger[] {
  return [...queueTriggers(deps), ...mongoTriggers(deps), ...afterTriggers(deps)];
}
