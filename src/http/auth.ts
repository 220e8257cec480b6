import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiToken, Role } from '../config/tokens.js';
import { ROLES } from '../config/tokens.js';
import { apiError } from './errors.js';

/** Who sent a request, as every recorded action names them. */
export interface Principal {
  readonly name: string;
  readonly role: Role;
}

/** With no token at all the API is open (loopback only, hosts.ts): everyone is this admin. */
export const ANONYMOUS: Principal = { name: 'anonymous', role: 'admin' };

/** The actor fields of an audit entry for this request. */
export const actor = (req: FastifyRequest): { who: string; role: Role } => ({ who: req.principal.name, role: req.principal.role });

export const atLeast = (have: Role, need: Role): boolean => ROLES.indexOf(have) >= ROLES.indexOf(need);

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

interface Entry {
  readonly digest: Buffer;
  readonly who: Principal;
}

/**
 * The tokens the ops API accepts: RUNLET_TOKEN (one admin, named "RUNLET_TOKEN") and those
 * of the tokens file, which `reload` reads again (POST /api/reload, admin only). Tokens are
 * compared as SHA-256 digests with timingSafeEqual, and against every entry whatever
 * matched first, so neither a token's length nor its place in the file shows in the time.
 */
export class ApiTokens {
  private entries: readonly Entry[];

  constructor(
    private readonly single: string | undefined,
    private readonly readFile?: () => readonly ApiToken[],
  ) {
    this.entries = this.build();
  }

  /** No token configured: the API is open, as before tokens existed. */
  get open(): boolean {
    return this.entries.length === 0;
  }

  get count(): number {
    return this.entries.length;
  }

  /** Reads the tokens file again; on an error (ConfigError) the tokens in use stay. */
  reload(): void {
    this.entries = this.build();
  }

  identify(sent: string): Principal | undefined {
    const digest = createHash('sha256').update(sent).digest();
    let found: Principal | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, digest) && !found) found = e.who;
    return found;
  }

  private build(): Entry[] {
    const list: ApiToken[] = [];
    if (this.single) list.push({ name: 'RUNLET_TOKEN', token: this.single, role: 'admin' });
    if (this.readFile) list.push(...this.readFile());
    return list.map((t) => ({ digest: createHash('sha256').update(t.token).digest(), who: { name: t.name, role: t.role } }));
  }
}

/**
 * Bearer-token check for everything under /api, and the role each route needs (roles.ts).
 * 401 for no or a wrong token; 403 for a token whose role may not do this.
 */
export function requireToken(app: FastifyInstance, tokens: ApiTokens, needs: (req: FastifyRequest) => Role): void {
  app.decorateRequest('principal', { getter: () => ANONYMOUS });
  app.addHook('onRequest', async (req) => {
    let who = ANONYMOUS;
    if (!tokens.open) {
      const header = req.headers.authorization ?? '';
      const sent = header.startsWith('Bearer ') ? header.slice(7) : '';
      const found = sent ? tokens.identify(sent) : undefined;
      if (!found) throw apiError('UNAUTHORIZED', {});
      who = found;
    }
    Object.defineProperty(req, 'principal', { value: who, enumerable: true });
    const need = needs(req);
    if (!atLeast(who.role, need))
      throw apiError('FORBIDDEN', { name: who.name, role: who.role, need, method: req.method, url: req.url.split('?')[0]! });
  });
}
