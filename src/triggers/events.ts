import { afterTriggers } from './after.js';
import { cronTriggers } from './cron.js';
import { mongoTriggers } from './mongo/index.js';
import { queueTriggers } from './queue.js';
import type { Trigger, TriggerDeps } from './types.js';

/** Every event trigger the config asks for (webhooks are routes of the HTTP server). */
export function eventTriggers(deps: TriggerDeps): Trigger[] {
  return [...queueTriggers(deps), ...mongoTriggers(deps), ...afterTriggers(deps)];
}

/** Every long-lived trigger: schedules first, then the event sources. */
export async function allTriggers(deps: TriggerDeps): Promise<Trigger[]> {
  return [...(await cronTriggers(deps)), ...eventTriggers(deps)];
}
