import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import type { RunletConfig } from '../config/types.js';
import { ApiClient, CliError } from './client.js';

export interface CommonArgs {
  configFile: string;
  env: NodeJS.ProcessEnv;
}

/** Loads the config, turning its errors into a CLI error that prints every one of them. */
export function loadOrExit(args: CommonArgs): RunletConfig {
  try {
    return loadConfig(args.configFile, args.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, 1);
    throw err;
  }
}

export function clientFor(env: NodeJS.ProcessEnv): ApiClient {
  const url = env.RUNLET_URL ?? `http://127.0.0.1:${env.RUNLET_PORT ?? 8080}`;
  return new ApiClient(url, env.RUNLET_TOKEN);
}
