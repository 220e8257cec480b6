import type Docker from 'dockerode';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Logger } from 'pino';
import type { RunletConfig } from '../config/types.js';
import { LABEL_IMAGE } from './labels.js';

/**
 * Builds the images of `build:` tasks at start-up, from local build contexts only (the
 * Dockerfile's FROM must name a local image or scratch: runlet never pulls). Docker's
 * layer cache makes an unchanged context cost a second or less.
 */
export async function buildTaskImages(docker: Docker, config: RunletConfig, logger: Logger): Promise<void> {
  const seen = new Map<string, string>();
  for (const task of Object.values(config.tasks)) {
    if (!task.build) continue;
    const key = `${task.build}→${task.image}`;
    if (seen.has(key)) continue;
    seen.set(key, task.name);
    const started = Date.now();
    await buildImage(docker, task.build, task.image);
    logger.info({ task: task.name, image: task.image, ms: Date.now() - started }, 'built task image');
  }
}

export async function buildImage(docker: Docker, contextDir: string, tag: string): Promise<void> {
  const stream = await docker.buildImage(
    { context: contextDir, src: filesUnder(contextDir) },
    { t: tag, labels: { [LABEL_IMAGE]: 'build' }, forcerm: true },
  );
  const output: string[] = [];
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, res: Array<{ error?: string; stream?: string }>) => {
        const failed = err?.message ?? res?.find((r) => r.error)?.error;
        if (failed) reject(new Error(`building ${tag} from ${contextDir} failed: ${failed.trim()}\n${output.slice(-10).join('')}`));
        else resolve();
      },
      (event: { stream?: string }) => {
        if (event.stream) output.push(event.stream);
      },
    );
  });
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      if (name === '.git') continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out;
}
