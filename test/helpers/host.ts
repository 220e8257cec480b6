import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import S3rver from 's3rver';
import { SMTPServer } from 'smtp-server';
import { hostAddress } from '../../src/runtime/host-address.js';
import { freePort } from './process.js';

/**
 * Real servers a task container can reach: they listen on all interfaces of the host, and
 * a container reaches the host at the address src/runtime/host-address.ts finds (the same
 * one the daemon gives task containers as host.docker.internal).
 */

let cached: Promise<string> | undefined;

/** The host as task containers see it (e.g. 172.17.0.1), also on an engine's first start. */
export function hostForContainers(): Promise<string> {
  const suite = process.env.RUNLET_TEST_SUITE;
  const labels: Record<string, string> = suite ? { 'runlet.x-suite': suite } : {};
  cached ??= hostAddress(new Docker(), { labels }).then((h) => h.address);
  return cached;
}

/** A redis-server on TCP (tasks can't reach the daemon's unix socket), no persistence. */
export async function startTcpRedis(): Promise<{
  port: number;
  urlForHost: string;
  urlForContainers: string;
  client: Redis;
  stop(): Promise<void>;
}> {
  const port = await freePort('0.0.0.0');
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  // Reconnects until the server is up; the first PING waits for that.
  const client = new Redis({ port, maxRetriesPerRequest: null, retryStrategy: () => 50 });
  client.on('error', () => undefined);
  await client.ping();
  const host = await hostForContainers();
  return {
    port,
    urlForHost: `redis://127.0.0.1:${port}`,
    urlForContainers: `redis://${host}:${port}`,
    client,
    stop: async () => {
      client.disconnect();
      child.kill('SIGKILL');
    },
  };
}

/** s3rver: a real S3-compatible HTTP server on a temp directory. */
export async function startS3(
  buckets: string[] = [],
): Promise<{ endpointForHost: string; endpointForContainers: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'runlet-s3-'));
  const port = await freePort('0.0.0.0');
  const server = new S3rver({
    port,
    address: '0.0.0.0',
    directory: dir,
    silent: true,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  await server.run();
  const host = await hostForContainers();
  return {
    endpointForHost: `http://127.0.0.1:${port}`,
    endpointForContainers: `http://${host}:${port}`,
    stop: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
}

/** smtp-server: a real SMTP server that keeps every message it is sent. */
export async function startSmtp(): Promise<{
  port: number;
  host: string;
  hostForContainers: string;
  messages: ReceivedMail[];
  stop(): Promise<void>;
}> {
  const messages: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  const port = await freePort('0.0.0.0');
  await new Promise<void>((resolve) => server.listen(port, '0.0.0.0', resolve));
  return {
    port,
    host: '127.0.0.1',
    hostForContainers: await hostForContainers(),
    messages,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
