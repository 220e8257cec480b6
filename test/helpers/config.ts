import { expect } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import type { RunletConfig, WebhookConfig } from '../../src/config/types.js';

/** The config these YAML lines (after `prefix`) load to, as if from runlet.yaml. */
export function loadLines(lines: string[], env: NodeJS.ProcessEnv = {}, prefix: readonly string[] = []): RunletConfig {
  return parseConfig([...prefix, ...lines].join('\n') + '\n', 'runlet.yaml', env);
}

/** The full message parseConfig throws for these lines; line numbers count `prefix` too. */
export function configErrorFor(lines: string[], env: NodeJS.ProcessEnv = {}, prefix: readonly string[] = []): string {
  try {
    loadLines(lines, env, prefix);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

/** A resolved webhook config as the signature checks see it: hmac-sha256 with `secret`, defaults elsewhere. */
export function webhookConfig(secret: string, over: Partial<WebhookConfig> = {}): WebhookConfig {
  return {
    auth: 'signature',
    secret,
    signature: 'hmac-sha256',
    toleranceMs: 5 * 60_000,
    dedupe: 'id',
    dedupeWindowMs: 600_000,
    respond: 'accepted',
    resultTimeoutMs: 30_000,
    maxBodyBytes: 256 * 1024,
    headers: [],
    ...over,
  };
}
