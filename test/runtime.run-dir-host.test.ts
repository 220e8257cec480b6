import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OUTPUT_LIMIT_BYTES } from '../src/runtime/output.js';
import { placeRunDirOnHost, readOutputOnHost, runDirSource } from '../src/runtime/run-dir-host.js';

/**
 * /runlet on the host (run-dir-host.ts), on a directory standing in for a volume's _data: what
 * a program may leave there must never make runlet read a file of the host, hang, or read
 * more than the limit. The same behaviour through real containers: runtime.payload.test.ts.
 */
const volume = () => mkdtempSync(join(tmpdir(), 'runlet-run-dir-host-'));

describe('/runlet read and written on the host', () => {
  it('finds the /runlet volume of the local driver in an inspect, and nothing else', () => {
    const mount = { Type: 'volume', Destination: '/runlet', Driver: 'local', Source: '/var/lib/docker/volumes/x/_data' };
    expect(runDirSource({ Mounts: [mount] as never })).toBe('/var/lib/docker/volumes/x/_data');
    expect(runDirSource({ Mounts: [{ ...mount, Driver: 'nfs' }] as never })).toBeUndefined();
    expect(runDirSource({ Mounts: [{ ...mount, Type: 'bind' }] as never })).toBeUndefined();
    expect(runDirSource({ Mounts: [{ ...mount, Destination: '/data' }] as never })).toBeUndefined();
    expect(runDirSource(undefined)).toBeUndefined();
  });

  it('reads output.json as written; none is no output; a directory it cannot see is "use the engine"', async () => {
    const dir = volume();
    expect(await readOutputOnHost(dir)).toEqual({});
    writeFileSync(join(dir, 'output.json'), '{"ok": "ü"}');
    expect(await readOutputOnHost(dir)).toEqual({ output: '{"ok": "ü"}' });
    writeFileSync(join(dir, 'output.json'), '{"cut": ');
    expect(await readOutputOnHost(dir)).toMatchObject({
      output: '{"cut": ',
      outputError: expect.stringMatching(/^output\.json is not valid JSON/),
    });
    expect(await readOutputOnHost(join(dir, 'no-such-volume'))).toBeUndefined();
  });

  it('a symlink to a host file is refused, never followed', async () => {
    const dir = volume();
    const secret = join(volume(), 'host-secret');
    writeFileSync(secret, '"the host\'s"');
    symlinkSync(secret, join(dir, 'output.json'));
    const got = await readOutputOnHost(dir);
    expect(got).toEqual({ outputError: 'output.json is a symlink, not a regular file; not stored' });
  });

  it('a FIFO or a directory is refused without waiting on it; over the limit is refused from its size', async () => {
    const dir = volume();
    execFileSync('mkfifo', [join(dir, 'output.json')]);
    expect(await readOutputOnHost(dir)).toEqual({ outputError: 'output.json is a fifo, not a regular file; not stored' });
    const other = volume();
    mkdirSync(join(other, 'output.json'));
    expect(await readOutputOnHost(other)).toEqual({ outputError: 'output.json is a directory, not a regular file; not stored' });
    const big = volume();
    writeFileSync(join(big, 'output.json'), Buffer.alloc(OUTPUT_LIMIT_BYTES + 1, 0x20));
    expect(await readOutputOnHost(big)).toEqual({ outputError: 'output.json is 1 MiB, over the 1 MiB limit; not stored' });
  });

  it('places a 1777 /runlet and a 0644 payload.json, whatever the umask', async () => {
    const dir = volume();
    const umask = process.umask(0o077);
    try {
      expect(await placeRunDirOnHost(dir, Buffer.from('{"a":1}'))).toBe(true);
    } finally {
      process.umask(umask);
    }
    expect(statSync(dir).mode & 0o7777).toBe(0o1777);
    expect(statSync(join(dir, 'payload.json')).mode & 0o7777).toBe(0o644);
    expect(readFileSync(join(dir, 'payload.json'), 'utf8')).toBe('{"a":1}');
    expect(await placeRunDirOnHost(join(dir, 'gone'), undefined)).toBe(false);
  });
});
