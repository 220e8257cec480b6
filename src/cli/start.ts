import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { startDaemon } from '../daemon.js';
import { parseAllowedHosts, UnsafeListenError } from '../http/hosts.js';
import { createLogger } from '../lib/logger.js';
import { isSentinelUrl, parseSentinelUrl, sentinelUrlOf } from '../lib/redis.js';
import { CliError } from './client.js';
import { loadOrExit, type CommonArgs } from './common.js';
import { LABEL_NAMESPACE, USER_LABEL_PREFIX } from '../runtime/labels.js';

/**
 * `runlet start`: the daemon, until SIGINT or SIGTERM (a second one exits at once). SIGHUP
 * reloads the config file (as `runlet reload` does); one that arrives while the daemon starts
 * is applied once it runs, since the file it started with may be older than the signal.
 */
export async function startCommand(args: CommonArgs): Promise<number> {
  const { env } = args;
  const config = loadOrExit(args);
  const logger = createLogger({ level: env.RUNLET_LOG_LEVEL ?? 'info', pretty: process.stdout.isTTY });
  const port = env.RUNLET_PORT === undefined ? 8080 : Number(env.RUNLET_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CliError(`RUNLET_PORT must be a port number, got "${env.RUNLET_PORT}"`);
  const fnPort = env.RUNLET_FN_PORT === undefined ? 8081 : Number(env.RUNLET_FN_PORT);
  if (!Number.isInteger(fnPort) || fnPort < 0 || fnPort > 65535)
    throw new CliError(`RUNLET_FN_PORT must be a port number, got "${env.RUNLET_FN_PORT}"`);
  const stalledMs = env.RUNLET_STALLED_MS === undefined ? undefined : Number(env.RUNLET_STALLED_MS);
  if (stalledMs !== undefined && !(Number.isInteger(stalledMs) && stalledMs >= 1000))
    throw new CliError(`RUNLET_STALLED_MS must be a whole number of milliseconds, at least 1000, got "${env.RUNLET_STALLED_MS}"`);
  const allowed = parseAllowedHosts(env.RUNLET_ALLOWED_HOSTS);
  if (allowed.invalid.length > 0)
    throw new CliError(
      `RUNLET_ALLOWED_HOSTS must be host names or addresses separated by commas (or *), got "${allowed.invalid.join('", "')}"`,
    );
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  let reloadWhenReady = false;
  // The daemon logs what a reload did or why it refused the file.
  const reload = () => void daemon?.reload().catch(() => undefined);
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'reloading the config file');
    if (daemon) reload();
    else reloadWhenReady = true;
  });
  daemon = await startDaemon({
    stalledMs,
    labels: parseLabels(env.RUNLET_LABELS),
    config,
    logger,
    dataDir: resolve(env.RUNLET_DATA ?? '.runlet'),
    node: env.RUNLET_NODE ?? hostname(),
    redisUrl: redisUrlOf(env),
    port,
    host: env.RUNLET_HOST || undefined,
    token: env.RUNLET_TOKEN || undefined,
    tokensFile: env.RUNLET_TOKENS_FILE || undefined,
    allowedHosts: allowed.hosts,
    fnPort,
    fnHost: env.RUNLET_FN_HOST || undefined,
  }).catch((err: NodeJS.ErrnoException) => {
    if (err instanceof UnsafeListenError) throw new CliError(err.message);
    // Start-up failures are the user's to fix (a busy port, no engine, a failed build):
    // say what and how, without a stack trace.
    if (err.code === 'EADDRINUSE')
      throw new CliError(
        `port ${(err as { port?: number }).port ?? port} is already in use (another runlet?): set RUNLET_PORT (ops API) or RUNLET_FN_PORT (functions) to use another`,
      );
    throw new CliError(`could not start: ${err.message}`);
  });
  if (reloadWhenReady) reload();
  const running = daemon;
  return new Promise<number>((done) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, 'stopping');
      running.stop().then(
        () => done(0),
        (err) => {
          logger.error({ err }, 'stop failed');
          done(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }).then((code) => {
    // Force-closed queue workers may leave a timer behind; the daemon is stopped, so leave.
    setTimeout(() => process.exit(code), 100).unref();
    return code;
  });
}

/**
 * The Redis to use: REDIS_URL, or REDIS_SENTINELS (host:port,...) with REDIS_SENTINEL_NAME,
 * which stand for the sentinel URL `redis+sentinel://<sentinels>/<name>`; unset, the
 * embedded server. A sentinel URL is checked here, so a typo is a message, not a stack.
 */
export function redisUrlOf(env: NodeJS.ProcessEnv): string | undefined {
  const url = env.REDIS_URL || undefined;
  const sentinels = env.REDIS_SENTINELS?.trim() || undefined;
  const name = env.REDIS_SENTINEL_NAME?.trim() || undefined;
  if (url && (sentinels || name))
    throw new CliError(
      'set either REDIS_URL or REDIS_SENTINELS with REDIS_SENTINEL_NAME, not both (a sentinel URL may also go in REDIS_URL)',
    );
  if (sentinels && !name)
    throw new CliError('REDIS_SENTINELS is set without REDIS_SENTINEL_NAME, the name of the master the sentinels monitor');
  if (name && !sentinels)
    throw new CliError('REDIS_SENTINEL_NAME is set without REDIS_SENTINELS, the sentinels to ask (host:port,host:port)');
  const chosen = sentinels && name ? sentinelUrlOf(sentinels, name) : url;
  if (chosen && isSentinelUrl(chosen)) {
    try {
      parseSentinelUrl(chosen);
    } catch (err) {
      throw new CliError(`${sentinels ? 'REDIS_SENTINELS/REDIS_SENTINEL_NAME' : 'REDIS_URL'}: ${(err as Error).message}`);
    }
  }
  return chosen;
}

/** RUNLET_LABELS="team=data,env=prod": extra Docker labels on every container this daemon starts. */
export function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`RUNLET_LABELS must be key=value pairs separated by commas, got "${pair}"`);
    const key = pair.slice(0, eq).trim();
    // runlet's own labels say what a container is; an extra label must not claim to be one.
    if (key.startsWith(LABEL_NAMESPACE) && !key.startsWith(USER_LABEL_PREFIX))
      throw new CliError(`RUNLET_LABELS: "${key}" is runlet's own label namespace; use another key (or ${USER_LABEL_PREFIX}...)`);
    labels[key] = pair.slice(eq + 1).trim();
  }
  return labels;
}
