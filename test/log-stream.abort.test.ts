import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { EndedRuns } from '../src/runs/ended.js';
import { followLogs, type LogSubscriptions } from '../src/runs/log-stream.js';
import type { RunStore } from '../src/runs/store.js';

// followLogs over fakes (no Redis): a run that keeps running, and an end that every slice
// of waiting misses, so the follower goes round its wait loop as it would over hours.
describe('followLogs waiting for a long run', () => {
  it('keeps at most one abort listener on the signal, however many slices it waits', async () => {
    const abort = new AbortController();
    let slices = 0;
    let atSlice12 = -1;
    const store = { logSnapshot: async () => ({ text: '', attempt: 1, end: 0, status: 'running' as const }) };
    const ended = {
      waitFor: async () => {
        slices += 1;
        if (slices === 12) {
          atSlice12 = getEventListeners(abort.signal, 'abort').length;
          abort.abort();
        }
        return undefined;
      },
    };
    const subscriptions = { subscribe: async () => async () => undefined };
    const following = followLogs(
      {
        store: store as unknown as RunStore,
        ended: ended as unknown as EndedRuns,
        subscriptions: subscriptions as unknown as LogSubscriptions,
      },
      'run-1',
      () => undefined,
      abort.signal,
    );
    await expect(following).resolves.toBe(true);
    expect(slices).toBe(12);
    expect(atSlice12).toBe(1);
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
  });
});
