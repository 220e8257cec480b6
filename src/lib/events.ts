import { EventEmitter } from 'node:events';
import type { RunRecord, RunStatus } from '../runs/types.js';

/**
 * What the daemon tells in-process listeners (tests, the HTTP layer's live views). Typed so
 * a listener cannot misspell an event; emitted safely so a throwing listener cannot break
 * a run.
 */
export interface RunletEventMap {
  'run:queued': { runId: string; task: string; trigger: string };
  'run:skipped': { runId: string; task: string; reason: string };
  'run:started': { runId: string; task: string; containerId: string };
  'run:finished': { runId: string; task: string; status: RunStatus; record?: RunRecord };
  /** An attempt ended in `status` and the run is queued again for `nextAttempt`, due in `delayMs`. */
  'run:retrying': { runId: string; task: string; status: RunStatus; attempt: number; nextAttempt: number; delayMs: number };
  'cron:tick': { task: string; tickMs: number; runId: string; created: boolean };
  'daemon:ready': { url?: string };
}

export class RunletEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  on<K extends keyof RunletEventMap>(event: K, listener: (payload: RunletEventMap[K]) => void): () => void {
    this.emitter.on(event, listener);
    return () => this.emitter.off(event, listener);
  }

  emit<K extends keyof RunletEventMap>(event: K, payload: RunletEventMap[K]): void {
    for (const l of this.emitter.listeners(event)) {
      try {
        (l as (p: RunletEventMap[K]) => void)(payload);
      } catch {
        // A listener's bug is its own; the run goes on.
      }
    }
  }

  /** Resolves with the first event that matches, for tests that await instead of sleeping. */
  once<K extends keyof RunletEventMap>(event: K, match: (p: RunletEventMap[K]) => boolean = () => true, timeoutMs = 30_000): Promise<RunletEventMap[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${event}`));
      }, timeoutMs);
      const off = this.on(event, (p) => {
        if (!match(p)) return;
        clearTimeout(timer);
        off();
        resolve(p);
      });
    });
  }
}
