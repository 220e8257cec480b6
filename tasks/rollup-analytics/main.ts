import { MongoClient } from 'mongodb';
import { log, output, run, setting, TaskError } from '../lib/task.js';
import { window } from './pipeline.js';
import { rollup } from './rollup.js';

// Hourly: (re)computes the last ROLLUP_HOURS complete hours of appStarts into
// appStartsHourly. Re-running for the same hours replaces the same rows (README.md).

run(async () => {
  const url = process.env.MONGO_URL;
  if (!url) throw new TaskError("MONGO_URL is not set: rollup-analytics has nothing to read from; set it in the task's env (see README)");
  const hoursText = setting('ROLLUP_HOURS', '2');
  const hours = Number(hoursText);
  if (!Number.isInteger(hours) || hours < 1)
    throw new TaskError(`ROLLUP_HOURS must be a whole number of at least 1, not ${JSON.stringify(hoursText)}`);
  const scheduled = Date.parse(process.env.RUNLET_SCHEDULED_AT ?? '');
  const { from, to } = window(Number.isNaN(scheduled) ? Date.now() : scheduled, hours);

  const client = new MongoClient(url);
  try {
    await client.connect();
    const db = client.db(setting('MONGO_DB', 'studo'));
    const result = await rollup(db, {
      source: setting('MONGO_COLLECTION', 'appStarts'),
      into: setting('ROLLUP_COLLECTION', 'appStartsHourly'),
      from,
      to,
    });
    log('rolled up', { ...result, hours });
    output({ ...result, hours });
  } finally {
    await client.close();
  }
});
