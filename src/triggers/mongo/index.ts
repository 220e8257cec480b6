import type { Trigger, TriggerDeps } from '../types.js';

/** PLACEHOLDER (being written): one change-stream trigger per task with `mongo:`. */
export function mongoTriggers(_deps: TriggerDeps): Trigger[] {
  return [];
}
