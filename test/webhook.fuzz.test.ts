import { connect } from 'node:net';
import { sign as signGithub } from '@octokit/webhooks-methods';
import { describe, expect, it } from 'vitest';
import { signHmac } from '../src/triggers/webhook/signature.js';
import { useDaemon } from './helpers/daemon.js';

// Thousands of malformed webhook requests against a running daemon: it answers each with a
// 4xx (or closes a connection that broke the protocol), never a 5xx, makes no run, and
// afterwards still answers /healthz and accepts a correctly signed request.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 10s }
tasks:
  fz-hmac:
    command: [cat, /runlet/payload.json]
    webhook: { secret: fuzz-hmac-secret, maxBody: 8k, headers: [x-extra] }
  fz-gh:
    command: ["true"]
    webhook: { secret: fuzz-gh-secret, signature: github, maxBody: 8k }
  fz-bearer:
    command: ["true"]
    webhook: { secret: fuzz-bearer-secret, signature: bearer, maxBody: 8k, rateLimit: 1000/m }
  fz-open:
    command: ["true"]
    webhook: { auth: none, maxBody: 2k }
  fz-plain: { command: ["true"] }
`;
const ctx = useDaemon(CONFIG);
// GitHub signatures that are almost right: another secret, another body.
const GH_WRONG_SECRET = await signGithub('wrong', 'x');
const GH_OTHER_BODY = await signGithub('fuzz-gh-secret', 'y');
const TOTAL = 3200;
const CONCURRENCY = 32;

/** mulberry32: a seeded PRNG, so a failing case can be replayed from its index. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Case =
  { kind: 'fetch'; path: string; method: string; headers: Record<string, string>; body?: Buffer } | { kind: 'raw'; bytes: Buffer };

const INVALID_UTF8 = [
  Buffer.from([0xff]),
  Buffer.from([0xc3, 0x28]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
  Buffer.from([0xc0, 0xaf]),
];

function makeCase(i: number): Case {
  const rnd = prng(0x5eed + i);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const text = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + int(95))).join('');
  const badUtf8 = () => Buffer.concat([Buffer.from(text(int(50))), pick(INVALID_UTF8), Buffer.from(text(int(50)))]);
  const task = pick(['fz-hmac', 'fz-gh', 'fz-bearer']);
  const now = Math.floor(Date.now() / 1000);

  switch (i % 16) {
    case 0: // random bytes, no or a random signature
      return {
        kind: 'fetch',
        path: `/hooks/${task}`,
        method: 'POST',
        headers: rnd() < 0.5 ? {} : { 'x-runlet-signature': text(int(120)) },
        body: bytes(int(3000)),
      };
    case 1: // hmac headers almost right
      return {
        kind: 'fetch',
        path: '/hooks/fz-hmac',
        method: 'POST',
        headers: {
          'x-runlet-signature': pick([
            `t=${now}`,
            `v1=${'a'.repeat(64)}`,
            `t=${now},v1=${text(64)}`,
            `t=${now - 10_000},v1=${signHmac('fuzz-hmac-secret', '{}', now - 10_000).split('v1=')[1]}`,
            `t=${-now},v1=${'0'.repeat(64)}`,
            `t=${'9'.repeat(40)},v1=${'f'.repeat(64)}`,
            `t=,v1=`,
            ',,,,=,=,',
            `t=${now},v1=${signHmac('fuzz-hmac-secret', '{"a":1}', now).split('v1=')[1]}`, // for another body
            signHmac('wrong-secret', '{}', now),
          ]),
        },
        body: Buffer.from('{}'),
      };
    case 2: // github signatures almost right
      return {
        kind: 'fetch',
        path: '/hooks/fz-gh',
        method: 'POST',
        headers: {
          'x-hub-signature-256': pick([
            '',
            'sha256=',
            'sha1=abc',
            `sha256=${'g'.repeat(64)}`,
            GH_WRONG_SECRET,
            GH_OTHER_BODY,
            text(int(200)),
          ]),
          'x-github-delivery': text(1 + int(30)).replace(/ /g, '_'),
        },
        body: Buffer.from('x'),
      };
    case 3: // bearer almost right
      return {
        kind: 'fetch',
        path: '/hooks/fz-bearer',
        method: 'POST',
        headers: {
          authorization: pick([
            'Bearer',
            'Bearer ',
            'Bearer fuzz-bearer-secre',
            'Bearer fuzz-bearer-secret ' + text(3),
            'Basic Zm9v',
            text(int(300)),
          ]),
        },
        body: bytes(int(100)),
      };
    case 4: {
      // correctly signed, but not UTF-8: 415
      const body = badUtf8();
      return {
        kind: 'fetch',
        path: '/hooks/fz-hmac',
        method: 'POST',
        headers: { 'x-runlet-signature': signHmac('fuzz-hmac-secret', body), 'content-type': 'text/plain' },
        body,
      };
    }
    case 5: {
      // correctly signed, but a delivery id that is not one: 400
      const body = Buffer.from(text(int(200)));
      const id = pick(['', ' ', 'two words', 'x'.repeat(201), 'tab\tin', 'ünïcode']);
      return {
        kind: 'fetch',
        path: '/hooks/fz-bearer',
        method: 'POST',
        headers: { authorization: 'Bearer fuzz-bearer-secret', 'x-runlet-delivery': id },
        body,
      };
    }
    case 6: // auth: none, but over maxBody or not UTF-8
      return {
        kind: 'fetch',
        path: '/hooks/fz-open',
        method: 'POST',
        headers: { 'content-type': pick(['application/json', 'text/plain', 'x/y']) },
        body: rnd() < 0.5 ? Buffer.alloc(2049 + int(20_000), 'z') : badUtf8(),
      };
    case 7: // other methods, known and unknown paths
      return {
        kind: 'fetch',
        path: pick([
          '/hooks/fz-hmac',
          '/hooks/fz-plain',
          '/hooks/nope',
          '/hooks/',
          '/hooks/fz-hmac/extra',
          `/hooks/${encodeURIComponent(text(int(40)))}`,
        ]),
        method: pick(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'POST']),
        headers: {},
        body: undefined,
      };
    case 8: // content types of every shape
      return {
        kind: 'fetch',
        path: `/hooks/${task}`,
        method: 'POST',
        headers: {
          'content-type': pick([
            '',
            ';',
            'application/json; charset=',
            'multipart/form-data; boundary=',
            text(int(500)),
            '*/*',
            'application/x-www-form-urlencoded',
            'text/plain; charset=latin1',
          ]),
        },
        body: bytes(int(500)),
      };
    case 9: // oversize with a signature: 413 before verification
      return {
        kind: 'fetch',
        path: `/hooks/${task}`,
        method: 'POST',
        headers: { 'x-runlet-signature': `t=${now},v1=${'1'.repeat(64)}` },
        body: Buffer.alloc(8193 + int(100_000), 'o'),
      };
    case 10: // raw: lying Content-Length (more than is sent), then the client hangs up
      return {
        kind: 'raw',
        bytes: Buffer.from(`POST /hooks/${task} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${100 + int(5000)}\r\n\r\n${text(int(90))}`),
      };
    case 11: // raw: Content-Length less than sent, invalid, negative, twice, with Transfer-Encoding
      return {
        kind: 'raw',
        bytes: Buffer.from(
          `POST /hooks/${task} HTTP/1.1\r\nHost: 127.0.0.1\r\n${pick(['Content-Length: 3\r\n', 'Content-Length: -1\r\n', 'Content-Length: abc\r\n', 'Content-Length: 5\r\nContent-Length: 6\r\n', 'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n', 'Content-Length: 1e3\r\n'])}\r\n${text(10 + int(50))}`,
        ),
      };
    case 12: // raw: truncated or malformed chunked bodies
      return {
        kind: 'raw',
        bytes: Buffer.from(
          `POST /hooks/${task} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n${pick(['10\r\nshort', 'zz\r\nabc\r\n0\r\n\r\n', '5\r\nabcdefgh\r\n', `${(20_000).toString(16)}\r\n${'c'.repeat(9000)}`, '3\r\nabc\r\n', 'ffffffffffffffffff\r\n'])}`,
        ),
      };
    case 13: {
      // raw: huge or binary headers
      const big = rnd() < 0.5;
      const value = big
        ? 'h'.repeat(17_000 + int(20_000))
        : bytes(1 + int(80))
            .toString('latin1')
            .replace(/[\r\n]/g, '');
      return {
        kind: 'raw',
        bytes: Buffer.concat([
          Buffer.from(`POST /hooks/${task} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Extra: `),
          Buffer.from(value, 'latin1'),
          Buffer.from('\r\nContent-Length: 2\r\n\r\n{}'),
        ]),
      };
    }
    case 14: // raw: garbage request lines and unknown methods
      return {
        kind: 'raw',
        bytes: Buffer.concat([
          Buffer.from(
            pick([
              `PROPFIND /hooks/${task} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
              `POST /hooks/${task} HTTP/9.9\r\n\r\n`,
              'POST\r\n\r\n',
              `POST /hooks/${task}\r\n\r\n`,
              '',
            ]),
          ),
          bytes(int(300)),
        ]),
      };
    default: {
      // valid-looking everything, signed with the wrong secret, many headers
      const body = Buffer.from(JSON.stringify({ i, pad: text(int(1000)) }));
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-runlet-signature': signHmac('fuzz-hmac-secre7', body),
        'x-runlet-delivery': `d-${i}`,
      };
      for (let h = 0; h < int(60); h++) headers[`x-h${h}`] = text(int(100));
      return { kind: 'fetch', path: '/hooks/fz-hmac', method: 'POST', headers, body };
    }
  }
}

async function send(c: Case): Promise<string[]> {
  if (c.kind === 'fetch') {
    try {
      const res = await fetch(`${ctx.daemon.url}${c.path}`, {
        method: c.method,
        headers: c.headers,
        ...(c.body !== undefined && c.method !== 'GET' && c.method !== 'HEAD' && { body: new Uint8Array(c.body) }),
      });
      await res.arrayBuffer();
      return [String(res.status)];
    } catch {
      // The server may answer 413 and close before the client has sent all of a big body.
      return ['closed'];
    }
  }
  const { hostname, port } = new URL(ctx.daemon.url);
  return new Promise((resolve) => {
    let got = '';
    const socket = connect(Number(port), hostname, () => {
      socket.write(c.bytes);
      socket.end();
    });
    const done = (why?: string) => {
      clearTimeout(timer);
      socket.destroy();
      const statuses = [...got.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => m[1]!);
      resolve(statuses.length > 0 ? statuses : [why ?? 'closed']);
    };
    const timer = setTimeout(() => done('timeout'), 5000);
    socket.on('data', (d) => (got += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => done());
  });
}

describe('webhook fuzz', () => {
  it(`${TOTAL} malformed requests: only 4xx or a closed connection, no run, and the daemon still works`, async () => {
    const counts: Record<string, number> = {};
    const fiveXx: Array<{ i: number; status: string }> = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < TOTAL; i = next++) {
          for (const status of await send(makeCase(i))) {
            counts[status] = (counts[status] ?? 0) + 1;
            if (status.startsWith('5')) fiveXx.push({ i, status });
          }
        }
      }),
    );
    console.log('fuzz answers by status:', JSON.stringify(counts));
    const answered = Object.entries(counts).filter(([s]) => /^\d+$/.test(s));
    expect(fiveXx).toEqual([]);
    expect(counts.timeout ?? 0).toBe(0);
    expect(answered.every(([s]) => Number(s) >= 400 && Number(s) < 500)).toBe(true);
    expect(answered.reduce((n, [, c]) => n + c, 0)).toBeGreaterThanOrEqual(TOTAL * 0.9);
    // Each family the contract names was reached.
    for (const s of ['400', '401', '404', '405', '413', '415']) expect(counts[s] ?? 0, s).toBeGreaterThan(0);
    expect(await ctx.daemon.store.list({ limit: 10_000 })).toEqual([]);
    // Refused requests are the client's problem: nothing reached the daemon's error log.
    expect(ctx.daemon.logs.lines.filter((l) => Number(l.level) >= 50)).toEqual([]);

    const health = await fetch(`${ctx.daemon.url}/healthz`);
    expect(health.status).toBe(200);
    const body = '{"after":"fuzz"}';
    const ok = await fetch(`${ctx.daemon.url}/hooks/fz-hmac`, {
      method: 'POST',
      body,
      headers: { 'x-runlet-signature': signHmac('fuzz-hmac-secret', body) },
    });
    expect(ok.status).toBe(202);
    const { id } = (await ok.json()) as { id: string };
    const rec = await ctx.daemon.waitForEnd(id);
    expect(rec.status).toBe('succeeded');
    expect(rec.logTail).toBe(body);
    expect(await ctx.daemon.store.list({ limit: 10_000 })).toHaveLength(1);
  });
});
