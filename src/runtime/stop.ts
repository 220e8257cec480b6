import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { engineMessage, engineStatus, notConnected } from './errors.js';
import type { KillReason } from './types.js';

export type StopSignal = 'SIGTERM' | 'SIGKILL';

/**
 * A kill request answers in milliseconds, or within dockerd's own few seconds for a SIGKILL
 * it waits on. One that has not answered after this is abandoned and sent again: the engine
 * is frozen or dying, and a request left hanging would never be retried.
 */
export const SIGNAL_REQUEST_MS = 15_000;
/** The first wait before a failed signal is sent again; it doubles up to SIGNAL_RETRY_MAX_MS. */
export const SIGNAL_RETRY_FIRST_MS = 500;
/** Short enough that a container past its deadline is stopped within seconds of its engine answering again. */
export const SIGNAL_RETRY_MAX_MS = 5_000;

/** The wait before the `failures`-th retry (0-based): 0.5 s, 1 s, 2 s, 4 s, then 5 s. */
export function signalRetryDelay(failures: number): number {
  return Math.min(SIGNAL_RETRY_FIRST_MS * 2 ** failures, SIGNAL_RETRY_MAX_MS);
}

/**
 * Stops a container for a reason of our own: SIGTERM (to the init, which forwards it to the
 * program), then SIGKILL if it is still running after the grace period.
 *
 * A signal the engine could not take (restarting, frozen, not answering within
 * SIGNAL_REQUEST_MS) is sent again, with backoff (SIGNAL_RETRY_*), until the engine answers it
 * or the container is known to have ended (`exited()`); once the grace period is over, the
 * retry sends SIGKILL. Without this a timeout that lands while the engine restarts under a
 * live-restore container would never be enforced. Each signal's first failure is logged as a
 * warning, its repeats only at debug, and the first success after failures at info.
 *
 * The reason is recorded before the first signal is sent. From then on an exit is ours,
 * whatever code it comes with: a program that dies of SIGTERM (143), or exits 0 from its
 * handler, is reported as timed out or cancelled, never as a plain failure or success.
 * Two exceptions, where the exit cannot be ours: the engine answers that the container was no
 * longer running when our first signal that reached it came (an adopted container that ended
 * before its deadline), or the container ended while no signal had reached the engine at all
 * (every attempt failed to connect: nothing was sent). Then the reason is withdrawn and the
 * container's own outcome stands.
 */
export class Stopper<R extends string = KillReason> {
  private recorded: { reason: R; detail?: string } | undefined;
  private withdrawn = false;
  private lastSignal: StopSignal | undefined;
  /** A signal was taken by the engine, or a request may have reached it (it broke after connecting). */
  private reached = false;
  private inFlight = 0;
  private escalated = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private firstSignal: Promise<void> = Promise.resolve();
  /** Aborted by exited(): ends the retries and their waits at once. */
  private readonly over = new AbortController();
  /** Ends the retries' current waits early (see retryNow). */
  private wake = new AbortController();

  constructor(
    private readonly container: Docker.Container,
    private readonly killGraceMs: number,
    private readonly logger: Logger,
  ) {}

  /** The first call wins: a cancel during a timeout's grace period does not restart it. */
  stop(reason: R, detail?: string): void {
    if (this.recorded || this.over.signal.aborted) return;
    this.recorded = { reason, detail };
    this.logger.info({ reason, killGraceMs: this.killGraceMs }, 'stopping container');
    this.firstSignal = this.deliver('SIGTERM');
    this.graceTimer = setTimeout(() => {
      this.escalated = true;
      void this.deliver('SIGKILL');
    }, this.killGraceMs);
  }

  /** The container exited (or is out of reach for good): no signal may follow (its id could already be removed). */
  exited(): void {
    if (this.over.signal.aborted) return;
    this.over.abort();
    clearTimeout(this.graceTimer);
    // Nothing reached the engine and nothing is on its way: the exit was not ours.
    if (!this.reached && this.inFlight === 0) this.withdrawn = true;
  }

  /** The engine answers again: a signal waiting to be resent goes now rather than after its backoff. */
  retryNow(): void {
    this.wake.abort();
    this.wake = new AbortController();
  }

  /** What we did, if anything: read after exit and after `settled()`. */
  get outcome(): { reason: R; detail?: string; signal: StopSignal } | undefined {
    if (!this.recorded || this.withdrawn) return undefined;
    return { ...this.recorded, signal: this.lastSignal ?? 'SIGTERM' };
  }

  /** Resolves once the SIGTERM's fate is known (answered, or given up after exit), so `outcome` is final. */
  settled(): Promise<void> {
    return this.firstSignal;
  }

  /** Sends `signal` until the engine answers it, the container ended, or (SIGTERM) SIGKILL took over. */
  private async deliver(signal: StopSignal): Promise<void> {
    for (let failures = 0; ; failures++) {
      if (this.over.signal.aborted || (signal === 'SIGTERM' && this.escalated && failures > 0)) return;
      const err = await this.send(signal);
      if (err === undefined) {
        if (failures > 0) this.logger.info({ signal, failures }, 'the engine took the signal after it had failed');
        return;
      }
      if (failures === 0) this.logger.warn({ err, signal }, 'could not signal container; sending it again until the engine answers');
      else this.logger.debug({ signal, failures, error: engineMessage(err) }, 'could not signal container, again');
      await abortableDelay(signalRetryDelay(failures), AbortSignal.any([this.over.signal, this.wake.signal]));
    }
  }

  /** One request. Undefined when this signal needs no resending (taken, or the container is not running); else the error. */
  private async send(signal: StopSignal): Promise<unknown> {
    this.inFlight++;
    try {
      await this.container.kill({ signal, abortSignal: AbortSignal.timeout(SIGNAL_REQUEST_MS) });
      this.lastSignal = signal;
      this.reached = true;
      return undefined;
    } catch (err) {
      // 409 "not running" / 404: it ended before our signal. The pending wait reports the exit.
      const status = engineStatus(err);
      if (status === 409 || status === 404) {
        this.logger.debug({ signal, status }, 'container had already stopped');
        if (!this.reached) this.withdraw();
        return undefined;
      }
      // A request that broke after connecting may still have been carried out.
      if (!notConnected(err)) this.reached = true;
      return err;
    } finally {
      this.inFlight--;
      if (this.over.signal.aborted && !this.reached && this.inFlight === 0) this.withdrawn = true;
    }
  }

  private withdraw(): void {
    this.withdrawn = true;
    this.escalated = true;
    clearTimeout(this.graceTimer);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
