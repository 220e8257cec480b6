#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { CliError } from './cli/client.js';
import { backfillCommand, cancelCommand, pauseCommand } from './cli/control.js';
import { logsCommand } from './cli/logs.js';
import { runCommand } from './cli/run.js';
import { retryCommand, runsCommand } from './cli/runs.js';
import { startCommand } from './cli/start.js';
import { statusCommand } from './cli/status.js';
import { validateCommand } from './cli/validate.js';

const USAGE = `usage: runlet <command> [options]

commands:
  start                       run the daemon (triggers, workers, ops API)
  validate                    check the config; list tasks and their next fire times
  run <task> [--payload FILE] [--wait] [--idempotency-key KEY]
                              queue a run now; with --wait, print its outcome and
                              exit with its exit code
  status                      tasks, next runs, runs in progress
  logs <run-id> [-f]          the run's kept output (last 64 KiB); -f: then follow it
                              live until the run ends, and exit as run --wait does
  runs [--task T] [--status S] [--dead] [--limit N]
                              recent runs, newest first, one line each; --dead: runs
                              that failed with no attempt left
  retry <run-id>              run an ended run again (new manual run, same payload)
  cancel <run-id>             cancel a queued or running run
  pause <task> | resume <task>
                              cluster-wide: ticks are recorded as skipped while paused
  backfill <task> --from T --to T
                              run the past ticks in [T, T] once each (ticks that ran are not repeated)

options:
  -c, --config FILE           config file (default config/runlet.yaml)
  -h, --help                  this text

environment: REDIS_URL, RUNLET_PORT (8080), RUNLET_TOKEN, RUNLET_DATA (.runlet),
RUNLET_HOST (127.0.0.1; 0.0.0.0 with a token; without RUNLET_TOKEN only a loopback
address, else start refuses), RUNLET_ALLOWED_HOSTS (more Host names to answer to, e.g. a
proxy's, comma-separated; requests for other names get 421, cross-origin changes 403),
RUNLET_NODE (hostname), RUNLET_URL (for run/status/logs), RUNLET_STALLED_MS (30000),
RUNLET_LABELS (extra container labels, k=v,k=v),
RUNLET_LOG_LEVEL (info)`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c', default: 'config/runlet.yaml' },
      payload: { type: 'string' },
      'idempotency-key': { type: 'string' },
      wait: { type: 'boolean', default: false },
      follow: { type: 'boolean', short: 'f', default: false },
      from: { type: 'string' },
      to: { type: 'string' },
      task: { type: 'string' },
      status: { type: 'string' },
      dead: { type: 'boolean', default: false },
      limit: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  const env = process.env;
  switch (command) {
    case 'start':
      return startCommand({ configFile: values.config, env });
    case 'validate':
      return validateCommand({ configFile: values.config, env });
    case 'run':
      if (!rest[0]) throw new CliError('usage: runlet run <task> [--payload FILE] [--wait]', 2);
      return runCommand({ configFile: values.config, env, task: rest[0], payloadFile: values.payload, wait: values.wait, idempotencyKey: values['idempotency-key'] });
    case 'status':
      return statusCommand({ configFile: values.config, env });
    case 'logs':
      if (!rest[0]) throw new CliError('usage: runlet logs <run-id> [-f]', 2);
      return logsCommand({ configFile: values.config, env, runId: rest[0], follow: values.follow });
    case 'runs':
      return runsCommand({ configFile: values.config, env, task: values.task, status: values.status, dead: values.dead, limit: values.limit });
    case 'retry':
      if (!rest[0]) throw new CliError('usage: runlet retry <run-id>', 2);
      return retryCommand({ configFile: values.config, env, runId: rest[0] });
    case 'cancel':
      if (!rest[0]) throw new CliError('usage: runlet cancel <run-id>', 2);
      return cancelCommand({ configFile: values.config, env, runId: rest[0] });
    case 'pause':
    case 'resume':
      if (!rest[0]) throw new CliError(`usage: runlet ${command} <task>`, 2);
      return pauseCommand({ configFile: values.config, env, task: rest[0], resume: command === 'resume' });
    case 'backfill':
      if (!rest[0]) throw new CliError('usage: runlet backfill <task> --from <time> --to <time>', 2);
      return backfillCommand({ configFile: values.config, env, task: rest[0], from: values.from, to: values.to });
    default:
      throw new CliError(`unknown command "${command}"\n\n${USAGE}`, 2);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    if (err instanceof CliError) {
      console.error(`runlet: ${err.message}`);
      process.exitCode = err.exitCode;
    } else if (err && typeof err === 'object' && 'code' in err && String((err as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      console.error(`runlet: ${(err as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      console.error(err);
      process.exitCode = 1;
    }
  },
);
