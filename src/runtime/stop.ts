import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { engineStatus } from './errors.js';
import type { KillReason } from './types.js';

export type StopSignal = 'SIGTERM' | 'SIGKILL';

/**
 * Stops a container for a reason of our own: SIGTERM (to the init, which forwards it to the
 * program), then SIGKILL if it is still running after the grace period.
 *
 * The reason is recorded before the first signal is sent. From then on an exit is ours,
 * whatever code it comes with: a program that dies of SIGTERM (143), or exits 0 from its
 * handler, is reported as timed out or cancelled, never as a plain failure or success.
 * The one exception is an engine answer that the container was no longer running when the
 * SIGTERM came (an adopted container that ended before its deadline): that exit was not
 * ours, so the reason is withdrawn and the container's own outcome stands.
 */
export class Stopper {
  private recorded: { reason: KillReason; detail?: string } | undefined;
  private lastSignal: StopSignal | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private firstSignal: Promise<void> = Promise.resolve();
  private done = false;

  constructor(
    private readonly container: Docker.Container,
    private readonly killGraceMs: number,
    private readonly logger: Logger,
  ) {}

  /** The first call wins: a cancel during a timeout's grace period does not restart it. */
  stop(reason: KillReason, detail?: string): void {
    if (this.recorded || this.done) return;
    this.recorded = { reason, detail };
    this.logger.info({ reason, killGraceMs: this.killGraceMs }, 'stopping container');
    this.firstSignal = this.send('SIGTERM');
    this.graceTimer = setTimeout(() => void this.send('SIGKILL'), this.killGraceMs);
  }

  /** The container exited: no signal may follow (its id could already be removed). */
  exited(): void {
    this.done = true;
    clearTimeout(this.graceTimer);
  }

  /** What we did, if anything: read after exit and after `settled()`. */
  get outcome(): { reason: KillReason; detail?: string; signal: StopSignal } | undefined {
    return this.recorded && { ...this.recorded, signal: this.lastSignal ?? 'SIGTERM' };
  }

  /** Resolves once the engine has answered the SIGTERM, so `outcome` is final. */
  settled(): Promise<void> {
    return this.firstSignal;
  }

  private send(signal: StopSignal): Promise<void> {
    if (this.done) return Promise.resolve();
    this.lastSignal = signal;
    return this.container.kill({ signal }).then(
      () => undefined,
      (err: unknown) => {
        // 409 "not running" / 404: it ended before our signal. The pending wait reports the exit.
        const status = engineStatus(err);
        if (status !== 409 && status !== 404) {
          this.logger.warn({ err, signal }, 'could not signal container');
          return;
        }
        this.logger.debug({ signal, status }, 'container had already stopped');
        if (signal === 'SIGTERM') {
          this.recorded = undefined;
          this.lastSignal = undefined;
          clearTimeout(this.graceTimer);
        }
      },
    );
  }
}
