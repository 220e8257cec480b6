import { QueueTrigger } from './queue/trigger.js';
import type { Trigger, TriggerDeps } from './types.js';

export { QueueTrigger } from './queue/trigger.js';
export type { QueueJobProgress, QueueJobResult } from './queue/job.js';

/** One trigger per task with `queue:`, each a BullMQ worker on the producers' queue. */
export function queueTriggers(deps: TriggerDeps): Trigger[] {
  return Object.values(deps.config.tasks).flatMap((task) => (task.queue ? [new QueueTrigger(deps, task, task.queue)] : []));
}
