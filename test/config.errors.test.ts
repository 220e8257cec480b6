import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { parseConfig } from '../src/config/load.js';
import { configErrorFor } from './helpers/config.js';

const errorFor = (lines: string[], env: NodeJS.ProcessEnv = {}): string => configErrorFor(lines, env);

const IMAGE = ['defaults:', '  image: runlet/busybox:local'];

describe('one mistake, one exact message at its line:col', () => {
  it('unknown key, with a did-you-mean', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  sync:', '    shedule: "* * * * *"'])).toBe(
      'runlet.yaml:5:5 tasks.sync.shedule: unknown key "shedule" (did you mean "schedule"?)',
    );
  });

  it('unknown key without a close match lists the allowed keys', () => {
    expect(errorFor(['tasks: {}', 'logging: debug'])).toBe(
      'runlet.yaml:2:1 logging: unknown key "logging" (allowed here: defaults, node, pools, tasks, retention, stuck, alerts)',
    );
  });

  it('a network that would share a namespace outside the run', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  sync:', '    network: host'])).toBe(
      'runlet.yaml:5:14 tasks.sync.network: network "host" would share a network namespace outside the run; use "none", "bridge" or a named network',
    );
  });

  it('a switch that is not true or false', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  sync:', '    suspended: maybe'])).toBe(
      'runlet.yaml:5:16 tasks.sync.suspended: expected true or false, got "maybe"',
    );
  });

  it('a user that docker run --user would not take', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  sync:', '    user: "root; rm"'])).toBe(
      'runlet.yaml:5:11 tasks.sync.user: expected a user like "1000:1000" or "nobody", got "root; rm"',
    );
  });

  it('a pool that does not exist, with a did-you-mean', () => {
    expect(errorFor([...IMAGE, 'pools: { heavy: { concurrency: 1 } }', 'tasks:', '  sync:', '    pool: hevy'])).toBe(
      'runlet.yaml:6:11 tasks.sync.pool: unknown pool "hevy" (did you mean "heavy"?); pools: default, heavy',
    );
  });

  it("a memory limit over its pool's budget could never start", () => {
    expect(errorFor([...IMAGE, 'pools: { heavy: { memory: 512m } }', 'tasks:', '  sync:', '    pool: heavy', '    memory: 1g'])).toBe(
      'runlet.yaml:7:13 tasks.sync.memory: memory limit 1g is more than pool "heavy"\'s budget of 512m: the task could never start',
    );
  });

  it("a memory limit over the node's budget could never start (also when it comes from defaults)", () => {
    expect(errorFor([...IMAGE, '  memory: 2g', 'node: { memory: 1g }', 'tasks:', '  sync: {}'])).toBe(
      "runlet.yaml:6:3 tasks.sync: memory limit 2g is more than the node's budget of 1g (node.memory): the task could never start",
    );
  });

  it('an overlap policy that does not exist', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  sync:', '    overlap: sometimes'])).toBe(
      'runlet.yaml:5:14 tasks.sync.overlap: expected one of queue, bufferOne, skip, replace, allow, got "sometimes"',
    );
  });

  it('there is no key that mounts anything into a task container (the Docker socket least of all)', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  sync:', '    volumes: ["/var/run/docker.sock:/var/run/docker.sock"]'])).toBe(
      'runlet.yaml:5:5 tasks.sync.volumes: "volumes" is refused: a run gets no host path and never the Docker socket ' +
        '(/var/run/docker.sock is root on the host); give it data through its payload, env, secrets or the network instead',
    );
  });

  it('bad size', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  archive:', '    memory: lots'])).toBe(
      'runlet.yaml:5:13 tasks.archive.memory: expected a size like "512m", got "lots"',
    );
  });

  it('memory given as a bare number is bytes, below Docker minimum', () => {
    expect(errorFor([...IMAGE, '  memory: 256', 'tasks: {}'])).toBe(
      'runlet.yaml:3:11 defaults.memory: must be at least 6m (Docker\'s minimum), got 256 (a bare number is bytes: write "256m" for megabytes)',
    );
  });

  it('bad duration', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  archive:', '    timeout: soon'])).toBe(
      'runlet.yaml:5:14 tasks.archive.timeout: expected a duration like "30s", "10m" or "2h", got "soon"',
    );
  });

  it('bad cpus', () => {
    expect(errorFor([...IMAGE, '  cpus: many', 'tasks: {}'])).toBe(
      'runlet.yaml:3:9 defaults.cpus: expected a number of CPUs like 0.5 or 2, got "many"',
    );
  });

  it("bad cron expression, with croner's reason", () => {
    expect(errorFor([...IMAGE, 'tasks:', '  nightly:', '    schedule: "61 3 * * *"'])).toBe(
      'runlet.yaml:5:15 tasks.nightly.schedule: invalid cron expression "61 3 * * *": Invalid value for minute: 61',
    );
  });

  it('cron expression with the wrong number of fields', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  nightly:', '    schedule: every day'])).toBe(
      'runlet.yaml:5:15 tasks.nightly.schedule: invalid cron expression "every day": expected 5 fields (minute hour day month weekday) or 6 (seconds first), got 2',
    );
  });

  it('unknown time zone, with a did-you-mean', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  nightly:', '    timezone: Europe/Viena'])).toBe(
      'runlet.yaml:5:15 tasks.nightly.timezone: unknown time zone "Europe/Viena" (did you mean "Europe/Vienna"?)',
    );
  });

  it('unset environment variable, at its ${', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  archive:', '    env:', '      MONGO_URL: ${MONGO_URL}'])).toBe(
      'runlet.yaml:6:18 tasks.archive.env.MONGO_URL: environment variable MONGO_URL is not set (write ${MONGO_URL:-default} to give a default)',
    );
  });

  it('a task with no image at all, at the task key', () => {
    expect(errorFor(['tasks:', '  archive:', '    schedule: "@daily"'])).toBe(
      'runlet.yaml:2:3 tasks.archive: no image: set `image:` or `build:` on the task, or `defaults.image`',
    );
  });

  it('command as a string, with the list form to write instead', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  archive:', '    command: node archive.js --since "1 day"'])).toBe(
      'runlet.yaml:5:14 tasks.archive.command: must be a list, not a string: runlet runs the command without a shell ' +
        "and won't guess how to split it, so quotes and spaces can't surprise you. " +
        'Write a list of arguments, or [sh, -c, "node archive.js --since \\"1 day\\""] to use a shell',
    );
  });

  it('command as a plain string, with the list to write', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  archive:', '    command: node archive.js --dry-run'])).toBe(
      'runlet.yaml:5:14 tasks.archive.command: must be a list, not a string: runlet runs the command without a shell ' +
        "and won't guess how to split it, so quotes and spaces can't surprise you. " +
        'Write [node, archive.js, --dry-run], or [sh, -c, "node archive.js --dry-run"] to use a shell',
    );
  });

  it('bad task name, at the key', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  Archive_App:', '    schedule: "@daily"'])).toBe(
      'runlet.yaml:4:3 tasks.Archive_App: invalid task name "Archive_App": use 1 to 63 lowercase letters, digits, "-" or "_", ' +
        'starting with a letter or digit (it becomes a Docker label and a Redis key)',
    );
  });

  it('env value that is not a scalar', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  a:', '    env:', '      HOSTS: [a, b]'])).toBe(
      'runlet.yaml:6:14 tasks.a.env.HOSTS: expected a string, number or boolean, got a list',
    );
  });

  it('missing tasks key', () => {
    expect(errorFor(IMAGE)).toBe('runlet.yaml:1:1 tasks: required key is missing: add a tasks: map (write tasks: {} for none yet)');
  });

  it('an empty file', () => {
    expect(errorFor(['# nothing yet'])).toBe(
      'runlet.yaml:1:1 expected a map with a tasks: key at the top level, got nothing (the file is empty)',
    );
  });
});

describe('YAML-level mistakes', () => {
  it('syntax error, with its own line:col', () => {
    expect(errorFor(['tasks:', '  a:', '    command: [node, archive.js', '    memory: 1g'])).toBe(
      'runlet.yaml:4:5 YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    );
  });

  it('unquoted cron expression starting with *', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  a:', '    schedule: */5 * * * *'])).toBe(
      'runlet.yaml:5:19 YAML syntax error: Unexpected alias at node end (a value starting with * is a YAML alias: quote it, as in schedule: "*/5 * * * *")',
    );
  });

  it('unquoted ${VAR} inside a flow map', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  a:', '    env: { MONGO_URL: ${MONGO_URL} }'])).toBe(
      'runlet.yaml:5:24 YAML syntax error: Unexpected flow-map-start at node end (inside { } or [ ], quote values that use ${...}, as in { URL: "${URL}" })',
    );
  });

  it('duplicate key, pointing at the second and naming the first', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  a:', '    schedule: "@daily"', '    memory: 64m', '    schedule: "@hourly"'])).toBe(
      'runlet.yaml:7:5 tasks.a.schedule: duplicate key "schedule" (first set on line 5; YAML would keep only one of them)',
    );
  });

  it('alias with no anchor', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  a:', '    env: *common'])).toBe(
      'runlet.yaml:5:10 tasks.a.env: unknown alias *common: quote the value if * is meant literally ("*common"), or set &common on a value before it',
    );
  });
});

describe('retries', () => {
  const task = (line: string) => [...IMAGE, 'tasks:', '  sync:', `    retries: ${line}`];

  it('an unknown key, with a did-you-mean', () => {
    expect(errorFor(task('{ attempts: 3, maxDelai: 5m }'))).toBe(
      'runlet.yaml:5:29 tasks.sync.retries.maxDelai: unknown key "maxDelai" (did you mean "maxDelay"?)',
    );
  });

  it('an unknown key in defaults.retries without a close match lists the allowed keys', () => {
    expect(errorFor([...IMAGE, '  retries: { attempts: 2, on: failure }', 'tasks: {}'])).toBe(
      'runlet.yaml:3:27 defaults.retries.on: unknown key "on" (allowed here: attempts, backoff, delay, maxDelay)',
    );
  });

  it('a number instead of the map, with what attempts counts', () => {
    expect(errorFor(task('3'))).toBe(
      'runlet.yaml:5:14 tasks.sync.retries: expected a map like { attempts: 3, backoff: exponential, delay: 30s }, got 3 ' +
        '(attempts counts the first run too: { attempts: 4 } is one run and 3 retries)',
    );
  });

  it('attempts below 1, or not a whole number', () => {
    expect(errorFor(task('{ attempts: 0 }'))).toBe('runlet.yaml:5:26 tasks.sync.retries.attempts: must be at least 1, got 0');
    expect(errorFor(task('{ attempts: 2.5 }'))).toBe(
      'runlet.yaml:5:26 tasks.sync.retries.attempts: expected a whole number of attempts like 3, got 2.5',
    );
  });

  it('an unknown backoff, with a did-you-mean', () => {
    expect(errorFor(task('{ backoff: exponental }'))).toBe(
      'runlet.yaml:5:25 tasks.sync.retries.backoff: expected "exponential" or "fixed", got "exponental" (did you mean "exponential"?)',
    );
    expect(errorFor(task('{ backoff: linear }'))).toBe(
      'runlet.yaml:5:25 tasks.sync.retries.backoff: expected "exponential" or "fixed", got "linear"',
    );
  });

  it('a delay without a unit', () => {
    expect(errorFor(task('{ delay: 30 }'))).toBe(
      'runlet.yaml:5:23 tasks.sync.retries.delay: expected a duration like "30s", "10m" or "2h", got 30 (a number needs a unit: write "30s" or "30m")',
    );
  });

  it('a delay longer than maxDelay, naming where each comes from and what it would do', () => {
    expect(errorFor(task('{ delay: 20m }'))).toBe(
      'runlet.yaml:5:23 tasks.sync.retries.delay: delay 20m is longer than maxDelay 10m (the default), so every retry would wait 10m: ' +
        'raise maxDelay to at least 20m or lower delay',
    );
    expect(errorFor([...IMAGE, '  retries: { delay: 2m }', 'tasks:', '  sync:', '    retries: { maxDelay: 1m }'])).toBe(
      'runlet.yaml:6:26 tasks.sync.retries.maxDelay: delay 2m (from defaults.retries) is longer than maxDelay 1m, so every retry would wait 1m: ' +
        'raise maxDelay to at least 2m or lower delay',
    );
  });
});

describe('several mistakes', () => {
  it('are all reported at once, in file order', () => {
    const message = errorFor(
      [
        'defaults:',
        '  timeout: 30',
        '  pids: 0',
        'tasks:',
        '  archive:',
        '    image: runlet/tasks:local',
        '    shedule: "0 3 * * *"',
        '    memory: lots',
        '    cpus: 0',
        '    env:',
        '      MONGO_URL: ${MONGO_URL}',
        '      TOKEN: ${TOKEN:-dev}',
        '  Sync:',
        '    command: [node, sync.js]',
        'retention:',
        '  runs: none',
      ],
      {},
    );
    expect(message).toBe(
      [
        'runlet.yaml:2:12 defaults.timeout: expected a duration like "30s", "10m" or "2h", got 30 (a number needs a unit: write "30s" or "30m")',
        'runlet.yaml:3:9 defaults.pids: must be at least 1, got 0',
        'runlet.yaml:7:5 tasks.archive.shedule: unknown key "shedule" (did you mean "schedule"?)',
        'runlet.yaml:8:13 tasks.archive.memory: expected a size like "512m", got "lots"',
        'runlet.yaml:9:11 tasks.archive.cpus: must be more than 0 and at most 64, got 0',
        'runlet.yaml:11:18 tasks.archive.env.MONGO_URL: environment variable MONGO_URL is not set (write ${MONGO_URL:-default} to give a default)',
        'runlet.yaml:13:3 tasks.Sync: invalid task name "Sync": use 1 to 63 lowercase letters, digits, "-" or "_", starting with a letter or digit (it becomes a Docker label and a Redis key)',
        'runlet.yaml:13:3 tasks.Sync: no image: set `image:` or `build:` on the task, or `defaults.image`',
        'runlet.yaml:16:9 retention.runs: expected a whole number of runs like 100, got "none"',
      ].join('\n'),
    );
  });

  it('exposes each issue as data', () => {
    try {
      parseConfig('tasks:\n  a:\n    image: x\n    memory: lots\n', 'config/runlet.yaml', {});
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).issues).toEqual([
        { file: 'config/runlet.yaml', line: 4, col: 13, path: 'tasks.a.memory', message: 'expected a size like "512m", got "lots"' },
      ]);
    }
  });
});

describe('what gives a run control of the host is refused by name, with the reason', () => {
  // What a docker-compose user writes; each is refused at the key, in a task and in defaults.
  const cases: [string, string, RegExp][] = [
    ['privileged: true', 'privileged', /privileged mode gives the container every capability and every host device/],
    ['network_mode: host', 'network_mode', /sharing the host's network namespace/],
    ['pid: host', 'pid', /sharing the host's process \(PID\) namespace/],
    ['ipc: host', 'ipc', /sharing the host's IPC namespace/],
    ['uts: host', 'uts', /sharing the host's UTS \(hostname\) namespace/],
    ['userns_mode: host', 'userns_mode', /sharing the host's user namespace/],
    ['cap_add: [SYS_ADMIN]', 'cap_add', /drops every capability and adds none back; added capabilities \(SYS_ADMIN, NET_ADMIN, SYS_PTRACE/],
    ['devices: ["/dev/sda:/dev/sda"]', 'devices', /host devices give a run raw access to the hardware/],
    ['volumes: ["/etc:/host-etc"]', 'volumes', /a run gets no host path and never the Docker socket/],
    ['security_opt: ["seccomp=unconfined"]', 'security_opt', /always has no-new-privileges/],
  ];

  for (const [line, key, why] of cases) {
    it(`tasks.<name>.${key}`, () => {
      const message = errorFor([...IMAGE, 'tasks:', '  sync:', `    ${line}`]);
      expect(message.startsWith(`runlet.yaml:5:5 tasks.sync.${key}: "${key}" is refused: `)).toBe(true);
      expect(message).toMatch(why);
    });
    it(`defaults.${key}`, () => {
      const message = errorFor([...IMAGE, `  ${line}`, 'tasks: {}']);
      expect(message.startsWith(`runlet.yaml:3:3 defaults.${key}: "${key}" is refused: `)).toBe(true);
      expect(message).toMatch(why);
    });
  }

  it('network: host is refused too (it is a key runlet has, with values it refuses)', () => {
    expect(errorFor([...IMAGE, 'tasks:', '  sync:', '    network: host'])).toMatch(
      /tasks\.sync\.network: network "host" would share a network namespace/,
    );
  });

  it('every refusal at once, one per line, in file order', () => {
    const message = errorFor([...IMAGE, 'tasks:', '  sync:', '    privileged: true', '    pid: host', '    cap_add: [SYS_PTRACE]']);
    expect(message.split('\n').map((l) => l.split(' ')[0])).toEqual(['runlet.yaml:5:5', 'runlet.yaml:6:5', 'runlet.yaml:7:5']);
  });
});

describe('files built to exhaust the parser are refused, not parsed', () => {
  it('flow nesting deeper than 64 levels, with where it passes the limit', () => {
    expect(errorFor(['tasks: ' + '['.repeat(5000) + ']'.repeat(5000)])).toBe(
      'runlet.yaml:1:72 YAML nested deeper than 64 levels of [ and {: no runlet setting needs that',
    );
  });

  it('a billion laughs: aliases beyond yaml maxAliasCount (100)', () => {
    const lines = ['a0: &a0 "lol"'];
    for (let i = 1; i <= 9; i++)
      lines.push(
        `a${i}: &a${i} [${Array(9)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    expect(errorFor([...lines, 'tasks: { t: { image: x, command: *a9 } }'])).toMatch(/cannot read the YAML: .*alias/i);
  });
});
