import type { Logger } from 'pino';

/**
 * Things to release on shutdown, released in reverse order of acquisition. A failing step
 * is logged and the rest still run: a stuck HTTP close must not leave Redis running.
 */
export class Releasers {
  private readonly steps: Array<{ name: string; release: () => Promise<unknown> }> = [];
  private releasing?: Promise<void>;

  constructor(private readonly logger: Logger) {}

  add(name: string, release: () => Promise<unknown>): void {
    this.steps.push({ name, release });
  }

  releaseAll(): Promise<void> {
    this.releasing ??= (async () => {
      while (this.steps.length > 0) {
        const step = this.steps.pop()!;
        try {
          await step.release();
        } catch (err) {
          this.logger.error({ err, step: step.name }, 'shutdown step failed; continuing');
        }
      }
    })();
    return this.releasing;
  }
}
