import type { FastifyInstance, FastifyRequest } from 'fastify';
import { apiError } from './errors.js';
import { describePolicy, hostAllowed, type HostPolicy } from './hosts.js';

/** Methods that change nothing: a page on another site may send them, it just can't read the answer. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Keeps pages on other sites from driving the daemon through the visitor's browser. Two
 * checks, on every route, before the token check:
 *
 * 1. Host (hosts.ts): refuses a name the daemon was not told about, which defeats DNS
 *    rebinding, the only way a foreign page can read an answer. It applies to /hooks,
 *    /metrics and /healthz too: on loopback every legitimate sender (a scraper, a local
 *    proxy or tunnel) uses an address or a name listed in RUNLET_ALLOWED_HOSTS, and a
 *    rebound page must not read /metrics or /healthz (their details name tasks and hosts).
 *
 * 2. Origin, for state changes (not GET/HEAD/OPTIONS): a no-cors fetch or a form POST
 *    is sent, and acted on, even though the page never sees the answer, so "the browser
 *    blocks the response" protects nothing. Refused: `Sec-Fetch-Site` other than
 *    same-origin or none (same-site covers another port on 127.0.0.1), or an `Origin`
 *    that is not this daemon's own (the Host header the request came with). Clients that
 *    are not browsers send neither header, so the CLI, curl and webhook senders never
 *    meet this check. It applies to /hooks as well: an `auth: none` webhook would
 *    otherwise be a POST any page could make, and a sender that sends an Origin is a
 *    browser page, which a webhook is not for.
 *
 * Both apply with a token as well. The token alone keeps /api safe from a no-cors page
 * (it cannot send Authorization), but not /hooks (auth: none) or /healthz, and a check
 * that no legitimate client fails costs nothing.
 */
export function guardOrigin(app: FastifyInstance, hosts: HostPolicy): void {
  app.addHook('onRequest', async (req) => {
    const host = req.headers.host;
    if (!hostAllowed(hosts, host)) {
      req.log.warn({ host, method: req.method, url: req.url }, 'refused a request for a host name this daemon does not answer to');
      throw apiError('HOST_NOT_ALLOWED', { host: String(host), allowed: describePolicy(hosts) });
    }
    if (SAFE_METHODS.has(req.method)) return;
    const refused = crossOrigin(req);
    if (refused) {
      req.log.warn({ ...refused, host, method: req.method, url: req.url }, 'refused a state change from another origin');
      throw apiError('CROSS_ORIGIN', { ...refused, method: req.method, url: req.url.split('?')[0]! });
    }
  });
}

/** The header that shows the request came from a page on another origin, if one does. */
function crossOrigin(req: FastifyRequest): { header: string; value: string } | undefined {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return { header: 'Sec-Fetch-Site', value: String(site) };
  const origin = req.headers.origin;
  if (origin !== undefined && !isOwnOrigin(origin, req.headers.host)) return { header: 'Origin', value: origin };
  return undefined;
}

/**
 * Same scheme-host-port as the daemon, judged by the Host the request came with (already
 * checked). The scheme is the Origin's own: behind a TLS proxy the daemon speaks http
 * while the page is https, and the proxy passes the browser's Host through. Both sides go
 * through the URL parser so a default port (":80", ":443") compares equal to none.
 */
function isOwnOrigin(origin: string, host: string | undefined): boolean {
  if (!host || /[@/\\?#]/.test(host)) return false; // a URL part, not a host: never "own"
  try {
    const o = new URL(origin);
    if (o.protocol !== 'http:' && o.protocol !== 'https:') return false; // "null" throws above
    return o.host === new URL(`${o.protocol}//${host}`).host;
  } catch {
    return false;
  }
}
