import { z } from 'zod';
import { got, isMap } from './describe.js';
import { withHints } from './editor-hints.js';
import { countField, expected, fail, schemeOf } from './fields.js';
import type { Finding } from './errors.js';
import { mapOf, required } from './trigger-fields.js';
import type { QueueTriggerConfig } from './types.js';

/** `queue:` on a task: its schema, the defaults merged in, and the check that spans tasks (one queue, one task). */

export const QUEUE_DEFAULTS = { prefix: 'bull', concurrency: 50 } as const;

const queueNameField = withHints(
  z
    .string({ error: required('a BullMQ queue name like "bids"', 'name: <the BullMQ queue the producers add jobs to>') })
    .transform((value, ctx) => {
      const name = value.trim();
      if (name === '') return fail(ctx, value, 'must not be empty: name the BullMQ queue the producers add jobs to');
      // BullMQ builds its Redis keys as <prefix>:<name>:..., so a ":" would split the name.
      if (name.includes(':'))
        return fail(ctx, value, `a BullMQ queue name can't contain ":" (BullMQ separates its Redis keys with it), got ${got(value)}`);
      return name;
    })
    .meta({ description: 'The BullMQ queue the producers add jobs to; each job makes one run with job.data as payload.' }),
  { examples: ['bids'] },
);

const REDIS_SCHEMES = ['redis://', 'rediss://', 'unix://'];

const redisUrlField = withHints(
  z
    .string({ error: expected('a Redis URL like "redis://host:6379"') })
    .transform((value, ctx) => {
      const url = value.trim();
      if (url === '') return undefined;
      if (!REDIS_SCHEMES.some((s) => url.startsWith(s)) || !URL.canParse(url)) {
        return fail(ctx, value, `expected a Redis URL starting with ${REDIS_SCHEMES.join(', ')}, got ${schemeOf(url)}`);
      }
      return url;
    })
    .meta({ description: "Redis the queue lives in. Empty or unset: runlet's own Redis (so ${QUEUE_REDIS:-} may be left unset)." }),
  { examples: ['${BIDS_REDIS_URL:-}', 'redis://queue-host:6379'] },
);

export const queueSchema = z.strictObject(
  {
    name: queueNameField,
    redis: redisUrlField.optional(),
    prefix: withHints(
      z
        .string({ error: expected('a key prefix like "bull"') })
        .transform((value, ctx) => value.trim() || fail(ctx, value, 'must not be empty (leave prefix out for BullMQ\'s default, "bull")'))
        .meta({ description: 'BullMQ key prefix of the queue, as the producers set it. Default bull.' })
        .optional(),
      { default: QUEUE_DEFAULTS.prefix },
    ),
    concurrency: withHints(
      countField('Source jobs one daemon holds at once while their runs are queued or running. Default 50.', 'jobs', 50).optional(),
      { default: QUEUE_DEFAULTS.concurrency },
    ),
  },
  { error: mapOf('{ name: bids }') },
);

export function queueField() {
  return withHints(
    queueSchema.meta({ description: 'Jobs of an outside BullMQ queue make runs; the job completes when its run succeeds.' }),
    {
      examples: [{ name: 'bids', redis: '${BIDS_REDIS_URL:-}' }],
    },
  );
}

export function resolveQueue(q: z.output<typeof queueSchema>): QueueTriggerConfig {
  return {
    name: q.name,
    ...(q.redis !== undefined && { redisUrl: q.redis }),
    prefix: q.prefix ?? QUEUE_DEFAULTS.prefix,
    concurrency: q.concurrency ?? QUEUE_DEFAULTS.concurrency,
  };
}

/** Two consumers of one queue split its jobs between them: each job would run only one task. */
export function queueClashFindings(tasks: Record<string, unknown>): Finding[] {
  const owners = new Map<string, string>();
  const findings: Finding[] = [];
  for (const [name, task] of Object.entries(tasks)) {
    if (!isMap(task) || !isMap(task.queue) || typeof task.queue.name !== 'string') continue;
    const q = task.queue;
    const redis = typeof q.redis === 'string' ? q.redis.trim() : '';
    const prefix = typeof q.prefix === 'string' && q.prefix.trim() !== '' ? q.prefix.trim() : QUEUE_DEFAULTS.prefix;
    const id = JSON.stringify([redis, prefix, (q.name as string).trim()]);
    const owner = owners.get(id);
    if (owner === undefined) {
      owners.set(id, name);
      continue;
    }
    const where = redis === '' ? "runlet's own Redis" : 'the same Redis';
    findings.push({
      path: ['tasks', name, 'queue', 'name'],
      at: 'value',
      message:
        `queue ${got(q.name)} in ${where} is already the trigger of task "${owner}": the two tasks would take each other's jobs, so each job would run only one of them; ` +
        `give each task its own queue, or chain this one with after: { task: ${owner} }`,
    });
  }
  return findings;
}
