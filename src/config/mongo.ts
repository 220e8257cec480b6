import { z } from 'zod';
import { got } from './describe.js';
import { withHints } from './editor-hints.js';
import { choiceField, fail, schemeOf } from './fields.js';
import { mapOf, required, wordListField, oneOf } from './trigger-fields.js';
import type { MongoOperation, MongoTriggerConfig } from './types.js';

/** `mongo:` on a task: its schema and the defaults merged in. */

export const MONGO_OPERATIONS = ['insert', 'update', 'replace', 'delete'] as const;

const mongoUrlField = withHints(
  z
    .string({
      error: required(
        'a MongoDB URL like "${MONGO_URL}"',
        'url: ${MONGO_URL} (it may be left unset with ${MONGO_URL:-}; the stream then waits unconfigured)',
      ),
    })
    .transform((value, ctx) => {
      const url = value.trim();
      // Unset is a run-time state, not a mistake: the example config must load without MongoDB.
      if (url === '') return undefined;
      if (!/^mongodb(?:\+srv)?:\/\//.test(url))
        return fail(ctx, value, `expected a MongoDB URL starting with mongodb:// or mongodb+srv://, got ${schemeOf(url)}`);
      return url;
    })
    .meta({
      description: 'Connection string. Empty (an unset ${MONGO_URL:-}) loads fine; the trigger then reports the stream as not configured.',
    }),
  { examples: ['${MONGO_URL}'] },
);

/** MongoDB's own naming rules, checked here so a typo fails at load and not at the first change event. */
function mongoNameField(what: 'db' | 'collection', forbidden: RegExp, example: string) {
  return withHints(
    z
      .string({ error: required(`a ${what} name like "${example}"`, `${what}: ${example}`) })
      .transform((value, ctx) => {
        const name = value.trim();
        if (name === '') return fail(ctx, value, `must not be empty: name the ${what === 'db' ? 'database' : 'collection'} to watch`);
        const bad = forbidden.exec(name);
        if (bad) {
          const hint =
            what === 'db' && bad[0] === '.'
              ? ` (for "${name}", write db: ${name.split('.')[0]} and collection: ${name.split('.').slice(1).join('.')})`
              : '';
          return fail(ctx, value, `a MongoDB ${what} name can't contain ${JSON.stringify(bad[0])}, got ${got(value)}${hint}`);
        }
        return name;
      })
      .meta({ description: what === 'db' ? 'Database to watch.' : 'Collection to watch.' }),
    { examples: [example] },
  );
}

export const mongoSchema = z.strictObject(
  {
    url: mongoUrlField,
    db: mongoNameField('db', /[/\\. "$]/, 'studo'),
    collection: mongoNameField('collection', /\$/, 'appStarts'),
    operations: withHints(
      wordListField(
        'Change events that make runs: insert, update, replace, delete. Default all four.',
        'an operation',
        oneOf(MONGO_OPERATIONS, 'an operation'),
        `must list at least one of ${MONGO_OPERATIONS.join(', ')} (leave operations out for all four)`,
      ).optional(),
      { default: [...MONGO_OPERATIONS] },
    ),
    match: z
      .record(z.string(), z.unknown(), { error: mapOf('{ "fullDocument.platform": "ios" }') })
      .meta({ description: 'An extra $match stage on the change events, e.g. { "fullDocument.platform": "ios" }.' })
      .optional(),
    fullDocument: withHints(
      choiceField('updateLookup: update events carry the document as it is now. default: only the changed fields. Default updateLookup.', [
        'default',
        'updateLookup',
      ] as const).optional(),
      { default: 'updateLookup' },
    ),
  },
  { error: mapOf('{ url: ${MONGO_URL}, db: studo, collection: appStarts }') },
);

export function mongoField() {
  return withHints(
    mongoSchema.meta({ description: 'Changes to a MongoDB collection make runs, one per change event (resumed after restarts).' }),
    {
      examples: [{ url: '${MONGO_URL}', db: 'studo', collection: 'appStarts', operations: ['insert'] }],
    },
  );
}

export function resolveMongo(m: z.output<typeof mongoSchema>): MongoTriggerConfig {
  return {
    ...(m.url !== undefined && { url: m.url }),
    db: m.db,
    collection: m.collection,
    operations: (m.operations as MongoOperation[] | undefined) ?? [...MONGO_OPERATIONS],
    ...(m.match !== undefined && { match: m.match }),
    fullDocument: m.fullDocument ?? 'updateLookup',
  };
}
