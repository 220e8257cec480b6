#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { CliError } from './cli/client.js';
import { backfillCommand, cancelCommand, pauseCommand } from './cli/control.js';
import { logsCommand } from './cli/logs.js';
import { reloadCommand } from './cli/reload.js';
import { runCommand } from './cli/run.js';
import { retryCommand, runsCommand } from './cli/runs.js';
import { startCommand } from './cli/start.js';
import { statusCommand } from './cli/status.js';
import { validateCommand } from './cli/validate.js';

const USAGE = `usage: runlet <command> [options]

commands:
  start [FILE]                run the daemon (triggers, workers, ops API) on the config FILE
  validate [FILE]             check the config FILE; list tasks and their next fire times
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
  reload                      the daemon reads its config file again (as on SIGHUP): a file
                              with errors is refused (exit 1) and the old config keeps running

options:
  -c, --config FILE           config file (default config/runlet.yaml); for start and
                              validate, FILE may also be given after the command
  -h, --help                  this text

An argument a command does not take is an error (exit 2), never ignored.

environment: REDIS_URL (or REDIS_SENTINELS with REDIS_SENTINEL_NAME), RUNLET_PORT (8080), RUNLET_TOKEN, RUNLET_DATA (.runlet),
RUNLET_HOST (127.0.0.1; 0.0.0.0 with a token; without RUNLET_TOKEN only a loopback
address, else start refuses), RUNLET_ALLOWED_HOSTS (more Host names to answer to, e.g. a
proxy's, comma-separated; requests for other names get 421, cross-origin changes 403),
RUNLET_NODE (hostname), RUNLET_URL (for run/status/logs/reload), RUNLET_STALLED_MS (30000),
RUNLET_LABELS (extra container labels, k=v,k=v),
RUNLET_LOG_LEVEL (info)`;

const DEFAULT_CONFIG = 'config/runlet.yaml';

const OPTIONS = {
  config: { type: 'string', short: 'c' },
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
} as const;
type OptionName = keyof typeof OPTIONS;

/**
 * What each command takes: its positionals (`?` marks one that may be left out) and the
 * options besides --config and --help. Anything else on the line is a usage error: an
 * argument that is silently dropped (`runlet validate bad.yaml` checking another file)
 * tells the user something false.
 */
const COMMANDS: Record<string, { readonly args: readonly string[]; readonly options: readonly OptionName[] }> = {
  start: { args: ['FILE?'], options: [] },
  validate: { args: ['FILE?'], options: [] },
  run: { args: ['<task>'], options: ['payload', 'wait', 'idempotency-key'] },
  status: { args: [], options: [] },
  logs: { args: ['<run-id>'], options: ['follow'] },
  runs: { args: [], options: ['task', 'status', 'dead', 'limit'] },
  retry: { args: ['<run-id>'], options: [] },
  cancel: { args: ['<run-id>'], options: [] },
  pause: { args: ['<task>'], options: [] },
  resume: { args: ['<task>'], options: [] },
  backfill: { args: ['<task>'], options: ['from', 'to'] },
  reload: { args: [], options: [] },
};

const flag = (name: OptionName) => ('short' in OPTIONS[name] ? `-${OPTIONS[name].short}/--${name}` : `--${name}`);

/** The command's positionals, checked against its table entry; throws a usage error otherwise. */
function checkArgs(command: string, rest: readonly string[], given: readonly OptionName[]): string[] {
  const spec = COMMANDS[command];
  if (!spec) throw new CliError(`unknown command "${command}"\n\n${USAGE}`, 2);
  const usage = `usage: runlet ${command}${spec.args.map((a) => (a.endsWith('?') ? ` [${a.slice(0, -1)}]` : ` ${a}`)).join('')}`;
  const required = spec.args.filter((a) => !a.endsWith('?')).length;
  if (rest.length < required) throw new CliError(`${usage}: ${spec.args[rest.length]} is missing`, 2);
  if (rest.length > spec.args.length) {
    const extra = rest
      .slice(spec.args.length)
      .map((a) => `"${a}"`)
      .join(', ');
    throw new CliError(`${usage}: unexpected argument${rest.length - spec.args.length > 1 ? 's' : ''} ${extra}`, 2);
  }
  const foreign = given.filter((o) => o !== 'config' && o !== 'help' && !spec.options.includes(o));
  if (foreign.length > 0) throw new CliError(`${usage}: ${foreign.map(flag).join(', ')} is not an option of "${command}"`, 2);
  return [...rest];
}

/** The config file: -c/--config, or for start and validate the FILE after the command; both only if they agree. */
function configFile(flagValue: string | undefined, positional: string | undefined): string {
  if (flagValue !== undefined && positional !== undefined && flagValue !== positional) {
    throw new CliError(`two config files given: "${positional}" and --config "${flagValue}"; give one`, 2);
  }
  return positional ?? flagValue ?? DEFAULT_CONFIG;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals, tokens } = parseArgs({ args: argv, allowPositionals: true, tokens: true, options: OPTIONS });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  const given = [...new Set(tokens.flatMap((t) => (t.kind === 'option' ? [t.name as OptionName] : [])))];
  const [arg] = checkArgs(command, rest, given);
  const env = process.env;
  const common = { configFile: configFile(values.config, command === 'start' || command === 'validate' ? arg : undefined), env };
  switch (command) {
    case 'start':
      return startCommand(common);
    case 'validate':
      return validateCommand(common);
    case 'run':
      return runCommand({
        ...common,
        task: arg!,
        payloadFile: values.payload,
        wait: values.wait,
        idempotencyKey: values['idempotency-key'],
      });
    case 'status':
      return statusCommand(common);
    case 'logs':
      return logsCommand({ ...common, runId: arg!, follow: values.follow });
    case 'runs':
      return runsCommand({ ...common, task: values.task, status: values.status, dead: values.dead, limit: values.limit });
    case 'retry':
      return retryCommand({ ...common, runId: arg! });
    case 'cancel':
      return cancelCommand({ ...common, runId: arg! });
    case 'pause':
    case 'resume':
      return pauseCommand({ ...common, task: arg!, resume: command === 'resume' });
    case 'reload':
      return reloadCommand(common);
    default: // backfill: checkArgs knows no other command
      return backfillCommand({ ...common, task: arg!, from: values.from, to: values.to });
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
