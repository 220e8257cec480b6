import { isIPv4, isIPv6 } from 'node:net';

/**
 * Which names the daemon answers to (the `Host` header), and where it may listen.
 *
 * The threat is a page on another site in a browser on this machine: with DNS rebinding,
 * evil.example first resolves to the attacker and then to 127.0.0.1, so the page's own
 * origin now reaches the daemon, and it may read the answers. The browser still sends
 * `Host: evil.example`, which is the one thing the page cannot change; refusing names the
 * daemon was not told about defeats it. An IP literal in Host cannot come from rebinding
 * (no name was resolved, and the page's origin is not that IP), so IP literals are always
 * accepted, as webpack-dev-server's `allowedHosts: 'auto'` does: a daemon reached by its
 * address needs no configuration, one reached by a name (a proxy, a tunnel) lists it.
 */
export interface HostPolicy {
  /** Normalized names (lower case, no port, IPv6 in brackets, no trailing dot). */
  readonly names: ReadonlySet<string>;
  /** RUNLET_ALLOWED_HOSTS=*: no Host check (only allowed with a token). */
  readonly any: boolean;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const WILDCARDS = new Set(['0.0.0.0', '[::]']);
// What a Host header or a configured name may contain: no userinfo (@), path or spaces,
// which the URL parser below would otherwise read as something else than a host.
const HOST_CHARS = /^[A-Za-z0-9._:[\]-]+$/;

/** "Example.COM.:8080" → "example.com", "[::1]:80" → "[::1]", "::1" → "[::1]"; undefined when it is no host. */
export function hostnameOf(text: string): string | undefined {
  let t = text.trim();
  if (isIPv6(t)) t = `[${t}]`;
  if (!t || !HOST_CHARS.test(t)) return undefined;
  try {
    // The URL parser normalizes as the browser did when it wrote Host (case, IPv4 forms, IPv6).
    const name = new URL(`http://${t}`).hostname;
    return name.endsWith('.') ? name.slice(0, -1) : name;
  } catch {
    return undefined;
  }
}

export function isLoopback(host: string): boolean {
  const name = hostnameOf(host);
  if (name === undefined) return false;
  if (name === 'localhost' || name === '[::1]') return true;
  return isIPv4(name) && name.startsWith('127.');
}

function isIpLiteral(name: string): boolean {
  return isIPv4(name) || (name.startsWith('[') && isIPv6(name.slice(1, -1)));
}

/** The names a daemon listening on `listenHost` answers to: loopback, its own address or name, and `allowed`. */
export function hostPolicy(listenHost: string, allowed: readonly string[] = []): HostPolicy {
  const names = new Set(LOOPBACK_NAMES);
  const own = hostnameOf(listenHost);
  if (own && !WILDCARDS.has(own)) names.add(own);
  for (const a of allowed) {
    const n = hostnameOf(a);
    if (n) names.add(n);
  }
  return { names, any: allowed.includes('*') };
}

/** A missing Host (HTTP/1.0) cannot come from a browser, so it is not the threat here. */
export function hostAllowed(policy: HostPolicy, header: string | undefined): boolean {
  if (policy.any || header === undefined) return true;
  const name = hostnameOf(header);
  return name !== undefined && (policy.names.has(name) || isIpLiteral(name));
}

/** For messages: "localhost, 127.0.0.1, [::1] and IP addresses". */
export function describePolicy(policy: HostPolicy): string {
  return `${[...policy.names].join(', ')} (any port) and IP addresses`;
}

/** RUNLET_ALLOWED_HOSTS="runlet.example.com, ci.internal": names, comma-separated; "*" for any. */
export function parseAllowedHosts(text: string | undefined): { hosts: string[]; invalid: string[] } {
  const entries = (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const invalid = entries.filter((e) => e !== '*' && hostnameOf(e) === undefined);
  return { hosts: entries, invalid };
}

/** The daemon would be open to strangers: it refuses to start instead (`runlet start` exits with the message). */
export class UnsafeListenError extends Error {}

/**
 * Where the daemon listens, and the Host policy that goes with it. Without a token the
 * ops API can run, cancel and pause anything and read payloads and logs, so it may only
 * listen on loopback, and the Host check may not be turned off. The token is the one way
 * to open it up: no "I know what I'm doing" switch, because there is nothing to know that
 * makes an open API on a network address safe.
 */
export function listenPolicy(opts: { host?: string; token?: string; allowedHosts?: readonly string[] }): {
  host: string;
  hosts: HostPolicy;
} {
  const host = opts.host ?? (opts.token ? '0.0.0.0' : '127.0.0.1');
  if (!opts.token && !isLoopback(host)) {
    throw new UnsafeListenError(
      `RUNLET_HOST=${host} is not a loopback address, and RUNLET_TOKEN is not set: the ops API (run, cancel, pause, payloads, logs) would be open to everyone who can reach ${host}. ` +
        'Set RUNLET_TOKEN (a long random string) to listen there, or unset RUNLET_HOST to listen on 127.0.0.1',
    );
  }
  if (!opts.token && opts.allowedHosts?.includes('*')) {
    throw new UnsafeListenError(
      'RUNLET_ALLOWED_HOSTS=* turns off the Host check, which is what keeps pages on other sites from driving a daemon without a token (DNS rebinding). ' +
        'List the names instead (RUNLET_ALLOWED_HOSTS=name,name), or set RUNLET_TOKEN too',
    );
  }
  return { host, hosts: hostPolicy(host, opts.allowedHosts) };
}
