import { describe, expect, it } from 'vitest';
import { configErrorFor, loadLines } from './helpers/config.js';

const BASE = ['defaults:', '  image: runlet/busybox:local', 'tasks:', '  archive-app-starts: {}', '  sync: {}'];

const load = (lines: string[], env: NodeJS.ProcessEnv = {}) => loadLines(lines, env);
const errorFor = (lines: string[], env: NodeJS.ProcessEnv = {}): string => configErrorFor(lines, env);

describe('stuck: and alerts: defaults', () => {
  it('without the keys: stuck after 10 minutes queued, no alert rules', () => {
    const config = load(BASE);
    expect(config.stuck).toEqual({ queuedMs: 600_000 });
    expect(config.alerts).toEqual([]);
  });

  it('a rule with only a url gets the default events, 5 s timeout and 5 attempts', () => {
    const config = load([...BASE, 'stuck: { queued: 90s }', 'alerts:', '  - url: ${SLACK_WEBHOOK_URL}'], {
      SLACK_WEBHOOK_URL: 'https://hooks.example.com/T0/B0/x',
    });
    expect(config.stuck.queuedMs).toBe(90_000);
    expect(config.alerts).toEqual([
      {
        url: 'https://hooks.example.com/T0/B0/x',
        on: ['failed', 'timed_out', 'oom_killed', 'dead', 'stuck'],
        timeoutMs: 5_000,
        retries: 5,
      },
    ]);
  });

  it('every key set, and on: written as one comma-separated string (as ${VAR} gives it)', () => {
    const config = load([
      ...BASE,
      'alerts:',
      '  - url: http://127.0.0.1:9/hook',
      '    on: "succeeded, lost"',
      '    tasks: [sync]',
      '    timeout: 250ms',
      '    retries: 2',
    ]);
    expect(config.alerts[0]).toEqual({
      url: 'http://127.0.0.1:9/hook',
      on: ['succeeded', 'lost'],
      tasks: ['sync'],
      timeoutMs: 250,
      retries: 2,
    });
  });
});

describe('stuck: and alerts: mistakes, each at its line:col', () => {
  it('stuck.queued under 1s', () => {
    expect(errorFor([...BASE, 'stuck:', '  queued: 500ms'])).toBe('runlet.yaml:7:11 stuck.queued: must be at least 1s, got "500ms"');
  });

  it('an unknown key under stuck:, with a did-you-mean', () => {
    expect(errorFor([...BASE, 'stuck:', '  queue: 5m'])).toBe('runlet.yaml:7:3 stuck.queue: unknown key "queue" (did you mean "queued"?)');
  });

  it('an unknown key in a rule, with a did-you-mean', () => {
    expect(errorFor([...BASE, 'alerts:', '  - url: https://x.example/h', '    retrys: 3'])).toBe(
      'runlet.yaml:8:5 alerts[0].retrys: unknown key "retrys" (did you mean "retries"?)',
    );
  });

  it('a rule without url, and a url that is not http(s) (without echoing it: it may be a secret)', () => {
    expect(errorFor([...BASE, 'alerts:', '  - on: [failed]'])).toBe(
      'runlet.yaml:7:5 alerts[0].url: required key is missing: add url: ${SLACK_WEBHOOK_URL} (the http(s) URL alerts are POSTed to)',
    );
    expect(errorFor([...BASE, 'alerts:', '  - url: ftp://user:secret@host/x'])).toBe(
      'runlet.yaml:7:10 alerts[0].url: expected an http:// or https:// URL, got a URL starting with "ftp://"',
    );
  });

  it('a url whose ${VAR} is empty', () => {
    expect(errorFor([...BASE, 'alerts:', '  - url: ${HOOK:-}'])).toBe(
      'runlet.yaml:7:10 alerts[0].url: is empty (did its ${VAR} interpolate to nothing?): alerts would go nowhere',
    );
  });

  it('an unknown event, with a did-you-mean, and one listed twice', () => {
    expect(errorFor([...BASE, 'alerts:', '  - url: https://x.example/h', '    on: [failed, timedout]'])).toBe(
      'runlet.yaml:8:18 alerts[0].on[1]: expected an alert event (failed, timed_out, oom_killed, lost, dead, stuck, cancelled, succeeded), got "timedout" (did you mean "timed_out"?)',
    );
    expect(errorFor([...BASE, 'alerts:', '  - url: https://x.example/h', '    on: [dead, dead]'])).toBe(
      'runlet.yaml:8:16 alerts[0].on[1]: "dead" is listed twice',
    );
  });

  it('a task filter naming a task that does not exist, with a did-you-mean', () => {
    expect(errorFor([...BASE, 'alerts:', '  - url: https://x.example/h', '    tasks: [sync, archive-app-start]'])).toBe(
      'runlet.yaml:8:19 alerts[0].tasks[1]: unknown task "archive-app-start" (did you mean "archive-app-starts"?), so this alert could never fire for it; tasks: archive-app-starts, sync',
    );
  });

  it('timeout and retries out of range', () => {
    expect(errorFor([...BASE, 'alerts:', '  - url: https://x.example/h', '    timeout: 10ms', '    retries: 0'])).toBe(
      [
        'runlet.yaml:8:14 alerts[0].timeout: must be at least 100ms, got "10ms"',
        'runlet.yaml:9:14 alerts[0].retries: must be at least 1, got 0',
      ].join('\n'),
    );
  });

  it('alerts: as a map rather than a list', () => {
    expect(errorFor([...BASE, 'alerts:', '  url: https://x.example/h'])).toMatch(
      /^runlet\.yaml:7:3 alerts: expected a list of alert rules like \[\{ url: \$\{SLACK_WEBHOOK_URL\} \}\], got/,
    );
  });
});
