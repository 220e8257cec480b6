import { describe, expect, it } from 'vitest';
import { interpolate } from '../src/config/interpolate.js';
import { parseConfig } from '../src/config/load.js';

describe('interpolate', () => {
  const env = { HOST: 'db', EMPTY: '' };

  it('replaces ${VAR} and ${VAR:-default}', () => {
    expect(interpolate('mongodb://${HOST}:27017', env)).toEqual({ ok: true, value: 'mongodb://db:27017' });
    expect(interpolate('${PORT:-27017}', env)).toEqual({ ok: true, value: '27017' });
    expect(interpolate('${HOST:-other}', env)).toEqual({ ok: true, value: 'db' });
  });

  it('uses the default for an empty variable too, as compose does', () => {
    expect(interpolate('${EMPTY:-x}', env)).toEqual({ ok: true, value: 'x' });
    expect(interpolate('[${EMPTY}]', env)).toEqual({ ok: true, value: '[]' });
  });

  it('leaves $VAR and $(...) alone, for shell snippets that run in the container', () => {
    expect(interpolate('echo $HOME $(date -u) $', env)).toEqual({ ok: true, value: 'echo $HOME $(date -u) $' });
  });

  it('writes a literal ${ for $${', () => {
    expect(interpolate('$${HOST} and ${HOST}', env)).toEqual({ ok: true, value: '${HOST} and db' });
  });

  it('reports every unset variable with its offset', () => {
    expect(interpolate('${A}/${HOST}/${B}', env)).toEqual({
      ok: false,
      errors: [
        { index: 0, token: '${A}', message: 'environment variable A is not set (write ${A:-default} to give a default)' },
        { index: 13, token: '${B}', message: 'environment variable B is not set (write ${B:-default} to give a default)' },
      ],
    });
  });

  it('refuses malformed references', () => {
    expect(interpolate('${1X}', env)).toMatchObject({ ok: false, errors: [{ index: 0, token: '${1X}' }] });
    expect(interpolate('a ${HOST', env)).toMatchObject({
      ok: false,
      errors: [{ index: 2, message: 'unclosed "${" (write $${ for a literal "${")' }],
    });
  });
});

describe('interpolation in a config file', () => {
  const text = [
    'defaults:',
    '  image: ${IMAGE:-runlet/busybox:local}',
    '  memory: ${MEMORY:-64m}',
    '  cpus: ${CPUS:-1}',
    'tasks:',
    '  a:',
    '    command: [sh, -c, "echo $${NOT_INTERPOLATED} $$HOME"]',
    '    env:',
    '      URL: "mongodb://${HOST}/app"',
    '',
  ].join('\n');

  it('applies to values and turns numeric strings into numbers where a number is expected', () => {
    const config = parseConfig(text, 'runlet.yaml', { HOST: 'db', CPUS: '2' });
    expect(config.tasks.a).toMatchObject({
      image: 'runlet/busybox:local',
      memoryBytes: 64 * 1024 ** 2,
      cpus: 2,
      command: ['sh', '-c', 'echo ${NOT_INTERPOLATED} $$HOME'],
      env: { URL: 'mongodb://db/app' },
    });
  });

  it('places an unset variable at its ${ inside quotes', () => {
    expect(() => parseConfig(text, 'runlet.yaml', {})).toThrow(
      'runlet.yaml:9:23 tasks.a.env.URL: environment variable HOST is not set (write ${HOST:-default} to give a default)',
    );
  });
});
