import { MongoClient } from 'mongodb';
import { log, output, run, setting, TaskError } from '../lib/task.js';
import { archive } from './archive.js';
import { MongoSource } from './mongo-source.js';
import { parsePolicy } from './pii.js';
import { S3PartStore } from './s3-store.js';

// Nightly: moves appStarts older than ARCHIVE_OLDER_THAN_DAYS to S3 as redacted, gzipped
// JSON Lines, then deletes them. Design and crash safety: README.md next to this file.

const DAY_MS = 86_400_000;

function positiveInt(name: string, fallback: number): number {
  const text = setting(name, String(fallback));
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new TaskError(`${name} must be a whole number of at least 1, not ${JSON.stringify(text)}`);
  return n;
}

/** Midnight UTC, N days before the tick (or now): each run archives whole days. */
export function cutoff(nowMs: number, days: number): Date {
  return new Date(Math.floor(nowMs / DAY_MS) * DAY_MS - days * DAY_MS);
}

run(async () => {
  const url = process.env.MONGO_URL;
  if (!url) throw new TaskError("MONGO_URL is not set: archive-app-starts has nothing to read from; set it in the task's env (see README)");
  const days = positiveInt('ARCHIVE_OLDER_THAN_DAYS', 30);
  const batchSize = positiveInt('ARCHIVE_BATCH_SIZE', 1000);
  const salt = setting('ARCHIVE_SALT');
  const policy = parsePolicy(process.env.PII_POLICY);
  const collection = setting('MONGO_COLLECTION', 'appStarts');
  const endpoint = process.env.S3_ENDPOINT || undefined;
  const store = new S3PartStore({
    bucket: setting('S3_BUCKET'),
    region: setting('S3_REGION', 'us-east-1'),
    endpoint,
    forcePathStyle: setting('S3_FORCE_PATH_STYLE', endpoint ? 'true' : 'false') === 'true',
  });
  const scheduled = Date.parse(process.env.RUNLET_SCHEDULED_AT ?? '');
  const before = cutoff(Number.isNaN(scheduled) ? Date.now() : scheduled, days);

  const client = new MongoClient(url);
  try {
    await client.connect();
    const coll = client.db(setting('MONGO_DB', 'studo')).collection(collection);
    log('archiving', { collection, before: before.toISOString(), batchSize, policy });
    const result = await archive({
      source: new MongoSource(coll, batchSize),
      store,
      policy,
      salt,
      prefix: setting('S3_PREFIX', collection),
      before,
      batchSize,
      log,
    });
    log('archived', { ...result, parts: result.parts.length });
    output(result);
  } finally {
    await client.close();
    store.client.destroy();
  }
});
