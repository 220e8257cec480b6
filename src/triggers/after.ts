import type { Trigger, TriggerDeps } from './types.js';

/** PLACEHOLDER (being written): chaining, one trigger for all tasks with `after:`. */
export function afterTriggers(_deps: TriggerDeps): Trigger[] {
  return [];
}
