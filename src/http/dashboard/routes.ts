import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

/**
 * The assets are read from the source tree (`src/http/dashboard/`) found from the package
 * root, whether this module runs compiled from dist/ or as TypeScript under vitest: tsc
 * copies no .html/.css/.js, and a copy step would be one more thing a fresh clone can get
 * wrong.
 */
function assetDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    // The package root is the first directory up that holds the sources.
    const assets = join(dir, 'src', 'http', 'dashboard');
    if (existsSync(join(dir, 'package.json')) && existsSync(join(assets, 'index.html'))) return assets;
    const up = dirname(dir);
    if (up === dir) throw new Error(`dashboard: no src/http/dashboard/index.html in any directory above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** index.html at /, and each page module and the stylesheet at /dashboard/<file>. */
function assets(dir: string): Array<{ url: string; file: string; type: string }> {
  const out = [{ url: '/', file: 'index.html', type: 'text/html; charset=utf-8' }];
  for (const file of readdirSync(dir).sort()) {
    const type = TYPES[file.slice(file.lastIndexOf('.'))];
    if (type) out.push({ url: `/dashboard/${file}`, file, type });
  }
  return out;
}

/**
 * Only the page's own files may run or style it. The bearer token lives in localStorage,
 * so a script injected from anywhere else could read it: the pages render data with
 * textContent only, and this policy is the second line.
 */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * GET / and /dashboard/*: the dashboard's static files, without the token (they hold no
 * data; every figure comes from /api with the token the viewer types in).
 */
export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  const dir = assetDir();
  // Read once: a few small files, served from memory, revalidated by ETag.
  const files = assets(dir).map((a) => {
    const body = readFileSync(join(dir, a.file));
    return { url: a.url, type: a.type, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
  });
  for (const f of files) {
    app.get(f.url, async (req, reply) => {
      reply
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-cache')
        .header('etag', f.etag);
      if (req.headers['if-none-match'] === f.etag) return reply.code(304).send();
      return reply.type(f.type).send(f.body);
    });
  }
};
