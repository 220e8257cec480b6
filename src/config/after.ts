import { z } from 'zod';
import { got, isMap } from './describe.js';
import { editorHints, withHints } from './editor-hints.js';
import { fail, type Ctx } from './fields.js';
import { mapOf, required, wordListField, oneOf } from './trigger-fields.js';
import type { AfterTrigger } from './types.js';

/** `after:` on a task: its schema and normal form. Unknown tasks and loops are checked in after-cycles.ts. */

/** The statuses a run can end in (runs/types.ts TERMINAL_STATUSES; config stays a leaf). */
export const AFTER_STATUSES = ['succeeded', 'failed', 'timed_out', 'oom_killed', 'cancelled', 'skipped', 'lost'] as const;
const AFTER_EXAMPLE = '{ task: archive, status: [succeeded] }';

export const afterItem = z.strictObject(
  {
    task: z
      .string({ error: required('a task name', 'task: <the task whose runs trigger this one>') })
      .transform((v) => v.trim())
      .meta({ description: 'The task whose runs ending trigger this one.' }),
    status: withHints(
      wordListField(
        'Statuses of its runs that trigger this one: succeeded, failed, timed_out, oom_killed, cancelled, skipped, lost. Default [succeeded].',
        'a run status',
        oneOf(AFTER_STATUSES, 'a run status'),
        'must list at least one status (leave status out for [succeeded])',
      ).optional(),
      { default: ['succeeded'] },
    ),
  },
  { error: mapOf(AFTER_EXAMPLE) },
);

const afterList = z.array(afterItem);

/**
 * For the editor only: the two shapes `after:` takes. Parsing can't use this union, since
 * zod reports any mistake inside one of its shapes as "matched neither", without a path.
 */
const afterEditorShape = (() => {
  const { $schema: _, ...shape } = z.toJSONSchema(z.union([afterItem, afterList]), {
    io: 'input',
    target: 'draft-7',
    override: ({ zodSchema, jsonSchema }) => {
      const hints = editorHints.get(zodSchema);
      if (hints) Object.assign(jsonSchema, hints);
    },
  });
  return shape;
})();

/** One map or a list of maps, always a list afterwards. */
export function afterField() {
  return z
    .unknown()
    .transform((value, ctx): z.output<typeof afterList> => {
      if (!isMap(value) && !Array.isArray(value))
        return fail(ctx, value, `expected a map like ${AFTER_EXAMPLE}, or a list of them, got ${got(value)}`);
      const parsed = Array.isArray(value) ? afterList.safeParse(value) : afterItem.safeParse(value);
      if (!parsed.success) {
        // Re-raised as they are (paths, unknown-key lists) so messages land on the right node.
        for (const issue of parsed.error.issues) ctx.addIssue({ ...issue } as Parameters<Ctx['addIssue']>[0]);
        return z.NEVER;
      }
      return Array.isArray(parsed.data) ? parsed.data : [parsed.data];
    })
    .meta({ description: 'Runs of other tasks ending in the given statuses make runs of this one (chaining).', ...afterEditorShape });
}

export function resolveAfter(list: z.output<typeof afterList>): AfterTrigger[] {
  return list.map((a) => ({ task: a.task, status: a.status ?? ['succeeded'] }));
}
