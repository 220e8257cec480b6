import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The AWS Lambda Runtime API (2018-06-01), served by runlet to its reusable instances, so an
 * unchanged custom-runtime `bootstrap` loop (GET next, POST response or error) runs here.
 *
 * One server per process, on the address containers reach the host at (the bridge's
 * gateway: only containers and this host can reach it, never a public interface), an
 * ephemeral port. Each instance gets its own unguessable path prefix, and its
 * AWS_LAMBDA_RUNTIME_API is `<address>:<port>/<token>`: a bootstrap that builds its URLs as
 * `http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/...` (AWS's documented pattern) lands on its
 * own instance; a request under any other prefix gets 404 and learns nothing.
 */
export const RUNTIME_API_VERSION = '2018-06-01';
/** Lambda's limit for a synchronous response (and an error document): larger is refused with 413. */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

/** What one instance's endpoint does; reusable.ts implements it. */
export interface RuntimeApiSession {
  /** GET …/invocation/next: answer now or hold `res` until an invocation comes. */
  next(res: ServerResponse): void;
  /** POST …/invocation/<id>/response. Returns the HTTP status to answer (202, or 400 for a wrong id). */
  respond(requestId: string, body: Buffer): number;
  /** POST …/invocation/<id>/error, with Lambda-Runtime-Function-Error-Type. */
  fail(requestId: string, body: Buffer, errorType: string | undefined): number;
  /** POST …/init/error. */
  initFailed(body: Buffer, errorType: string | undefined): number;
  /** The response or error body was over MAX_RESPONSE_BYTES. */
  tooLarge(requestId: string | undefined): void;
}

export interface RuntimeApiEndpoint {
  /** The value of AWS_LAMBDA_RUNTIME_API for this instance. */
  readonly value: string;
  close(): void;
}

export class LambdaRuntimeApi {
  private readonly sessions = new Map<string, RuntimeApiSession>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  /**
   * Listens on `host` (the address containers reach this host at: runtime/host-address.ts),
   * which must be an address of this machine: an engine elsewhere has containers that cannot
   * reach a server here, and reuse is refused rather than bound to a public interface.
   */
  static async listen(host: string, port = 0): Promise<LambdaRuntimeApi> {
    const server = createServer();
    // A `next` is held open for as long as the instance idles: no request or socket timeout may end it.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    server.keepAliveTimeout = 60_000;
    // (Not checked against os.networkInterfaces(): it leaves out a bridge with no container on it, which is down.)
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'EADDRNOTAVAIL'
            ? new Error(
                `the Lambda Runtime API must listen where containers reach this host, but ${host} is not an address of this machine (is the Docker engine remote?)`,
                { cause: err },
              )
            : err,
        ),
      );
      server.listen(port, host, () => resolve());
    });
    const api = new LambdaRuntimeApi(server, host, (server.address() as AddressInfo).port);
    server.on('request', (req, res) => api.route(req, res));
    return api;
  }

  register(session: RuntimeApiSession): RuntimeApiEndpoint {
    const token = randomBytes(18).toString('base64url');
    this.sessions.set(token, session);
    return { value: `${this.host}:${this.port}/${token}`, close: () => this.sessions.delete(token) };
  }

  async close(): Promise<void> {
    this.sessions.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const match = /^\/([A-Za-z0-9_-]+)\/2018-06-01\/runtime\/(invocation\/next|invocation\/([^/]+)\/(response|error)|init\/error)$/.exec(
      (req.url ?? '').split('?')[0]!,
    );
    const session = match ? this.sessions.get(match[1]!) : undefined;
    if (!match || !session) return answer(res, 404, { errorMessage: 'not found', errorType: 'NotFound' });
    const [, , what, requestId, kind] = match;
    if (what === 'invocation/next') {
      if (req.method !== 'GET') return answer(res, 405, { errorMessage: 'use GET', errorType: 'MethodNotAllowed' });
      req.resume();
      return session.next(res);
    }
    if (req.method !== 'POST') return answer(res, 405, { errorMessage: 'use POST', errorType: 'MethodNotAllowed' });
    const errorType = req.headers['lambda-runtime-function-error-type'];
    readBody(req).then(
      (body) => {
        if (body === undefined) {
          session.tooLarge(requestId);
          return answer(res, 413, { errorMessage: `over ${MAX_RESPONSE_BYTES} bytes`, errorType: 'RequestEntityTooLarge' });
        }
        const type = typeof errorType === 'string' ? errorType : undefined;
        const status =
          what === 'init/error'
            ? session.initFailed(body, type)
            : kind === 'response'
              ? session.respond(decodeURIComponent(requestId!), body)
              : session.fail(decodeURIComponent(requestId!), body, type);
        if (status === 202) answer(res, 202, { status: 'OK' });
        else answer(res, status, { errorMessage: 'no such invocation in progress', errorType: 'InvalidRequestID' });
      },
      () => res.destroy(),
    );
  }
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

/** The body, or undefined when over MAX_RESPONSE_BYTES (the rest is drained, not kept). */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk as Buffer);
  }
  return size > MAX_RESPONSE_BYTES ? undefined : Buffer.concat(chunks);
}
