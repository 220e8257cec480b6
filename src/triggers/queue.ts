import type { Trigger, TriggerDeps } from './types.js';

/** PLACEHOLDER (being written): one trigger per task with `queue:`. */
export function queueTriggers(_deps: TriggerDeps): Trigger[] {
  return [];
}
