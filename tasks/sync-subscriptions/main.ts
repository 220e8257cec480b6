import { log, output, run, setting, TaskError } from '../lib/task.js';
import { ProviderClient, type RetryPolicy } from './http.js';
import { appStore, play } from './providers.js';
import { RedisSubscriptionStore } from './store.js';
import { syncDue } from './sync.js';

// sync-subscriptions: asks the App Store and Google Play for the status of every
// subscription due for a check and saves what they say. Settings: see README.md.

function positive(name: string, fallback: string, { integer = true } = {}): number {
  const text = setting(name, fallback);
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new TaskError(`${name} must be a positive ${integer ? 'whole ' : ''}number, got ${JSON.stringify(text)}`);
  }
  return n;
}

run(async () => {
  const retry: RetryPolicy = {
    attempts: positive('MAX_ATTEMPTS', '4'),
    backoffBaseMs: positive('BACKOFF_BASE_MS', '500'),
    backoffMaxMs: positive('BACKOFF_MAX_MS', '10000'),
    maxRetryAfterMs: positive('MAX_RETRY_AFTER_MS', '60000'),
    requestTimeoutMs: positive('REQUEST_TIMEOUT_MS', '10000'),
  };
  let throttled = 0;
  const onThrottled = () => void throttled++;
  const appstoreClient = new ProviderClient({
    provider: 'appstore',
    baseUrl: setting('APPSTORE_URL'),
    rps: positive('APPSTORE_RPS', '10', { integer: false }),
    bearer: process.env.APPSTORE_TOKEN || undefined,
    retry,
    onThrottled,
  });
  const playClient = new ProviderClient({
    provider: 'play',
    baseUrl: setting('PLAY_URL'),
    rps: positive('PLAY_RPS', '10', { integer: false }),
    bearer: process.env.PLAY_TOKEN || undefined,
    retry,
    onThrottled,
  });
  const store = new RedisSubscriptionStore(setting('SUBSCRIPTIONS_REDIS_URL'));
  try {
    const counts = await syncDue({
      store,
      providers: { appstore: appStore(appstoreClient), play: play(playClient, setting('PLAY_PACKAGE')) },
      batchSize: positive('BATCH_SIZE', '100'),
      maxPages: positive('MAX_PAGES', '20'),
      checkIntervalMs: positive('CHECK_INTERVAL_MS', String(24 * 3600_000)),
      recheckMinMs: positive('RECHECK_MIN_MS', String(15 * 60_000)),
      failedRecheckMs: positive('FAILED_RECHECK_MS', String(15 * 60_000)),
      throttled: () => throttled,
    });
    log('sync done', { ...counts });
    output(counts);
  } finally {
    await store.close();
  }
});
