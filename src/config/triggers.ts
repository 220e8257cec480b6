import { afterItem } from './after.js';
import { mongoSchema } from './mongo.js';
import { queueSchema } from './queue.js';
import { webhookSchema } from './webhook.js';

/**
 * The event triggers of a task (`webhook:`, `queue:`, `mongo:`, `after:`), one file each;
 * the checks on `after:` that need the whole task graph are in after-cycles.ts.
 */
export { afterField, AFTER_STATUSES, resolveAfter } from './after.js';
export { MONGO_OPERATIONS, mongoField, resolveMongo } from './mongo.js';
export { queueClashFindings, queueField, resolveQueue } from './queue.js';
export { parseRate, resolveWebhook, WEBHOOK_SIGNATURES, webhookField, webhookFindings, type Payload } from './webhook.js';

/** The keys each trigger map allows, for "did you mean". */
export const TRIGGER_KEYS: Readonly<Record<'webhook' | 'queue' | 'mongo' | 'after', readonly string[]>> = {
  webhook: Object.keys(webhookSchema.unwrap().shape),
  queue: Object.keys(queueSchema.shape),
  mongo: Object.keys(mongoSchema.shape),
  after: Object.keys(afterItem.shape),
};
