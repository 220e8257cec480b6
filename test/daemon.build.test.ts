import Docker from 'dockerode';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { manualRequest } from '../src/triggers/manual.js';
import { removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// `build: <dir>` builds the task's image at start-up from a local context (FROM a local
// image: nothing is pulled), relative to the config file's directory.
const dir = mkdtempSync(join(tmpdir(), 'runlet-build-'));
const tag = `runlet-build/built-${process.pid}:latest`;
mkdirSync(join(dir, 'ctx'));
writeFileSync(join(dir, 'ctx', 'Dockerfile'), 'FROM runlet/busybox:local\nCOPY greet.sh /greet.sh\nCMD ["sh", "/greet.sh"]\n');
writeFileSync(join(dir, 'ctx', 'greet.sh'), 'echo "built at start-up, says $GREETING"\n');
mkdirSync(join(dir, 'broken'));
writeFileSync(join(dir, 'broken', 'Dockerfile'), 'FROM runlet/busybox:local\nRUN exit 42\n');

const docker = new Docker();
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let daemon: TestDaemon;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await docker
    .getImage(tag)
    .remove({ force: true })
    .catch(() => undefined);
  await redis?.stopAndClean();
});

describe('build: tasks', () => {
  it('builds the image at start-up and runs it', async () => {
    const file = join(dir, 'runlet.yaml');
    const text = `tasks:\n  built:\n    build: ./ctx\n    image: ${tag}\n    env: { GREETING: hello }\n    memory: 16m\n`;
    writeFileSync(file, text);
    daemon = await startTestDaemon({ config: parseConfig(text, file, {}), redisUrl: redis.url });
    expect((await docker.getImage(tag).inspect()).Config.Labels?.['runlet.image']).toBe('build');
    const { runId } = await daemon.submit(manualRequest('built', undefined));
    const rec = await daemon.waitForEnd(runId);
    expect(rec.status).toBe('succeeded');
    expect(rec.logTail).toContain('built at start-up, says hello');
  });

  it('a build that fails stops the start with the build output, before anything runs', async () => {
    const file = join(dir, 'broken.yaml');
    const text = `tasks:\n  broken:\n    build: ./broken\n    image: runlet-build/broken-${process.pid}:latest\n`;
    writeFileSync(file, text);
    await expect(startTestDaemon({ config: parseConfig(text, file, {}), redisUrl: redis.url, node: 'broken-node' })).rejects.toThrow(
      /building runlet-build\/broken-\d+:latest from .*broken failed: .*42/s,
    );
  });
});
