import { Redis, type RedisOptions } from 'ioredis';

/**
 * Where the daemon's Redis is: a URL (`redis://`, `rediss://`) or the embedded server's
 * unix socket. Connections for BullMQ need `maxRetriesPerRequest: null` (its blocking
 * commands must wait out a reconnect rather than fail).
 */
export type RedisTarget = { url: string } | { path: string };

export function redisOptions(target: RedisTarget): RedisOptions {
  const base: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true };
  if ('path' in target) return { ...base, path: target.path };
  const u = new URL(target.url);
  if (u.protocol === 'unix:') return { ...base, path: u.pathname };
  return {
    ...base,
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

export function connect(target: RedisTarget, name: string): Redis {
  const r = new Redis({ ...redisOptions(target), connectionName: name });
  // Errors surface on the commands that fail; an 'error' listener keeps a reconnecting
  // client from crashing the process with an unhandled event.
  r.on('error', () => undefined);
  return r;
}

export function describeTarget(target: RedisTarget): string {
  if ('path' in target) return `unix://${target.path}`;
  const u = new URL(target.url);
  if (u.password) u.password = '***';
  return u.toString();
}
