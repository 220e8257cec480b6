import { Redis, type RedisOptions } from 'ioredis';
import { RedisUrlError } from './errors.js';

/**
 * Where the daemon's Redis is: a URL or the embedded server's unix socket. URLs:
 * `redis://` and `rediss://` (one server), `unix:///path`, and `redis+sentinel://` /
 * `rediss+sentinel://` for a master found through Redis Sentinel (see parseSentinelUrl).
 * Connections for BullMQ need `maxRetriesPerRequest: null` (its blocking commands must wait
 * out a reconnect rather than fail).
 */
export type RedisTarget = { url: string } | { path: string };

/** The sentinel URL schemes; the `s` one speaks TLS to the master, its replicas and the sentinels. */
const SENTINEL_SCHEMES = ['redis+sentinel://', 'rediss+sentinel://'] as const;

/** A sentinel's default port. */
export const SENTINEL_PORT = 26379;

/** What a sentinel URL names: the sentinels to ask, the master's name, and how to log in. */
export interface SentinelTarget {
  readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** The master group name the sentinels monitor (`sentinel monitor <name> ...`). */
  readonly name: string;
  readonly username?: string;
  /** The master's (and replicas') password. */
  readonly password?: string;
  readonly sentinelUsername?: string;
  readonly sentinelPassword?: string;
  readonly db?: number;
  readonly tls: boolean;
}

export function isSentinelUrl(url: string): boolean {
  return SENTINEL_SCHEMES.some((s) => url.startsWith(s));
}

export function isSentinel(target: RedisTarget): boolean {
  return 'url' in target && isSentinelUrl(target.url);
}

/**
 * `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master name>[/<db>]
 * [?sentinelPassword=...&sentinelUsername=...]`: every sentinel (port 26379 unless given),
 * the master group's name, and the master's credentials in the user info (the sentinels'
 * own, if they have any, as query parameters). A URL in one string, as REDIS_URL is one
 * string; WHATWG URLs take one host only, so this is parsed here.
 */
export function parseSentinelUrl(url: string): SentinelTarget {
  const scheme = SENTINEL_SCHEMES.find((s) => url.startsWith(s));
  if (!scheme) throw new RedisUrlError(`expected ${SENTINEL_SCHEMES.join(' or ')}, got "${url}"`);
  const rest = url.slice(scheme.length);
  const [beforeQuery, query = ''] = splitOnce(rest, '?');
  const [authority, path = ''] = splitOnce(beforeQuery, '/');
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const hostList = at >= 0 ? authority.slice(at + 1) : authority;
  const [user, pass] = userinfo ? splitOnce(userinfo, ':') : ['', undefined];
  if (hostList.trim() === '') throw new RedisUrlError(`no sentinel host in "${redact(url)}"`);
  const sentinels = hostList.split(',').map((h) => sentinelAddress(h.trim(), url));
  const [name, dbText, ...extra] = path.split('/').map((p) => decodeURIComponent(p));
  if (!name) throw new RedisUrlError(`no master name in "${redact(url)}": expected ${scheme}host:26379,host:26379/<master name>`);
  if (extra.length > 0 || (dbText !== undefined && dbText !== '' && !/^\d+$/.test(dbText)))
    throw new RedisUrlError(`after the master name only a database number may follow, in "${redact(url)}"`);
  const params = new URLSearchParams(query);
  const known = ['sentinelPassword', 'sentinelUsername'];
  const unknown = [...params.keys()].filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new RedisUrlError(`unknown parameter ${unknown.join(', ')} in "${redact(url)}" (known: ${known.join(', ')})`);
  return {
    sentinels,
    name,
    ...(user && { username: decodeURIComponent(user) }),
    ...(pass !== undefined && pass !== '' && { password: decodeURIComponent(pass) }),
    ...(params.get('sentinelUsername') && { sentinelUsername: params.get('sentinelUsername')! }),
    ...(params.get('sentinelPassword') && { sentinelPassword: params.get('sentinelPassword')! }),
    ...(dbText && { db: Number(dbText) }),
    tls: scheme === 'rediss+sentinel://',
  };
}

/** `REDIS_SENTINELS=host:port,host:port` and `REDIS_SENTINEL_NAME=mymaster` as the one URL they stand for. */
export function sentinelUrlOf(sentinels: string, name: string): string {
  return `redis+sentinel://${sentinels.trim()}/${encodeURIComponent(name.trim())}`;
}

function sentinelAddress(text: string, url: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new RedisUrlError(`"${text}" is not a sentinel address (host or host:port) in "${redact(url)}"`);
  const port = m[2] === undefined ? SENTINEL_PORT : Number(m[2]);
  if (!(port > 0 && port < 65536)) throw new RedisUrlError(`"${text}" has no valid port in "${redact(url)}"`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function splitOnce(text: string, sep: string): [string, string | undefined] {
  const i = text.indexOf(sep);
  return i < 0 ? [text, undefined] : [text.slice(0, i), text.slice(i + sep.length)];
}

/** A URL with its passwords masked, for messages and logs. */
function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@').replace(/(sentinelPassword=)[^&]*/, '$1***');
}

/**
 * A read-only answer means the server we reach is a replica now (a failover demoted it, and
 * a name or address still points there): reconnect (and, with Sentinel, ask again who the
 * master is) and send the command again.
 */
function reconnectOnReadOnly(err: Error): 2 | false {
  return err.message.startsWith('READONLY') ? 2 : false;
}

export function redisOptions(target: RedisTarget): RedisOptions {
  const base: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true };
  if ('path' in target) return { ...base, path: target.path };
  if (isSentinelUrl(target.url)) {
    const s = parseSentinelUrl(target.url);
    return {
      ...base,
      sentinels: s.sentinels.map((a) => ({ ...a })),
      name: s.name,
      username: s.username,
      password: s.password,
      sentinelUsername: s.sentinelUsername,
      sentinelPassword: s.sentinelPassword,
      db: s.db,
      ...(s.tls && { tls: {}, enableTLSForSentinelMode: true }),
      // Subscribes to the sentinels' +switch-master, so a failover that leaves the old master
      // reachable (a manual one, a partition) moves the connection too, not only a dead socket.
      failoverDetector: true,
      reconnectOnError: reconnectOnReadOnly,
    };
  }
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
    reconnectOnError: reconnectOnReadOnly,
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
  if (isSentinelUrl(target.url)) {
    const s = parseSentinelUrl(target.url);
    const hosts = s.sentinels.map((a) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`).join(',');
    const user = s.username || s.password ? `${s.username ?? ''}${s.password ? ':***' : ''}@` : '';
    return `${s.tls ? 'rediss' : 'redis'}+sentinel://${user}${hosts}/${encodeURIComponent(s.name)}${s.db !== undefined ? `/${s.db}` : ''}`;
  }
  const u = new URL(target.url);
  if (u.password) u.password = '***';
  return u.toString();
}
