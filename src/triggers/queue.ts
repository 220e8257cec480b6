import type { TaskConfig } from '../config/types.js';
import { QueueTrigger } from './queue/trigger.js';
import type { Trigger, TriggerDeps } from './types.js';

export { QueueTrigger } from './queue/trigger.js';
export type { QueueJobProgress, QueueJobResult } from './queue/job.js';

/** The trigger of a task with `queue:`: a BullMQ worker on the producers' queue. */
export function queueTriggersOf(deps: TriggerDeps, task: TaskConfig): Trigger[] {
  return task.queue ? [new QueueTrigger(deps, task, task.queue)] : [];
}
