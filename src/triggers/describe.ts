import type { TaskConfig } from '../config/types.js';

/** One trigger of a task as the API, the CLI and the dashboard show it. Never holds a secret. */
export type TriggerView =
  | { type: 'cron'; schedule: string; timezone: string }
  | { type: 'webhook'; path: string; auth: string; respond: string; rateLimit?: string }
  | { type: 'queue'; queue: string; redis: 'runlet' | 'own' }
  | { type: 'mongo'; db: string; collection: string; operations: readonly string[]; configured: boolean }
  | { type: 'after'; task: string; status: readonly string[] }
  | { type: 'manual' };

export function triggersOf(task: TaskConfig): TriggerView[] {
  const out: TriggerView[] = [];
  if (task.schedule) out.push({ type: 'cron', schedule: task.schedule, timezone: task.timezone });
  if (task.webhook) {
    const w = task.webhook;
    out.push({
      type: 'webhook',
      path: `/hooks/${task.name}`,
      auth: w.auth === 'none' ? 'none' : w.signature,
      respond: w.respond,
      ...(w.rateLimit && { rateLimit: `${w.rateLimit.count} per ${w.rateLimit.perMs / 1000}s` }),
    });
  }
  if (task.queue) out.push({ type: 'queue', queue: task.queue.name, redis: task.queue.redisUrl ? 'own' : 'runlet' });
  if (task.mongo) {
    const m = task.mongo;
    out.push({ type: 'mongo', db: m.db, collection: m.collection, operations: m.operations, configured: m.url !== undefined });
  }
  for (const a of task.after ?? []) out.push({ type: 'after', task: a.task, status: a.status });
  out.push({ type: 'manual' });
  return out;
}

/** One line per trigger, for `runlet validate`. */
export function describeTrigger(t: TriggerView): string {
  switch (t.type) {
    case 'cron':
      return `cron "${t.schedule}" (${t.timezone})`;
    case 'webhook':
      return `webhook POST ${t.path} (auth ${t.auth}, respond ${t.respond}${t.rateLimit ? `, at most ${t.rateLimit}` : ''})`;
    case 'queue':
      return `queue "${t.queue}" (${t.redis === 'runlet' ? "runlet's Redis" : 'its own Redis'})`;
    case 'mongo':
      return `mongo ${t.db}.${t.collection} [${t.operations.join(', ')}]${t.configured ? '' : ' (mongo.url is empty: not watched)'}`;
    case 'after':
      return `after ${t.task} ${t.status.join('|')}`;
    case 'manual':
      return 'manual (runlet run, POST /api/tasks/:name/runs)';
  }
}
