import type { FastifyPluginAsync } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CHANGES_CHANNEL } from '../runs/keys.js';

/** One message of `runlet:changes`: a run was created or changed status, on any daemon. */
export interface RunChange {
  readonly id: string;
  readonly status: string;
  readonly task: string;
}

type Listener = (change: RunChange) => void;

/** "<runId> <status> <task>", as the run scripts publish it. */
export function parseChange(message: string): RunChange | undefined {
  const [id, status, ...rest] = message.split(' ');
  const task = rest.join(' ');
  return id && status && task ? { id, status, task } : undefined;
}

/**
 * The daemon's one subscription to `runlet:changes`, shared by every live view. It is
 * subscribed only while someone listens, so a daemon nobody watches is not sent every
 * run change of the cluster, and `PUBSUB NUMSUB runlet:changes` shows whether views leak.
 */
export class ChangeFeed {
  private readonly listeners = new Set<Listener>();
  private subscribed: Promise<unknown> | undefined;

  constructor(
    private readonly subscriber: Redis,
    private readonly logger: Logger,
  ) {
    // Messages published while the connection was down are lost, which views tolerate
    // (they reload from the records when their stream reconnects).
    subscriber.on('error', (err: Error) => logger.debug({ err }, 'change feed connection error'));
    // ioredis re-subscribes after a reconnect only if the connection had been ready; a
    // SUBSCRIBE queued while it was still connecting can be lost to its ready check (seen
    // in tests: the promise resolved, yet the server had no subscription). Subscribing
    // again on every ready is idempotent and covers both.
    subscriber.on('ready', () => {
      if (this.listeners.size > 0)
        this.subscriber.subscribe(CHANGES_CHANNEL).catch((err: unknown) => this.logger.warn({ err }, 'could not subscribe to run changes'));
    });
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== CHANGES_CHANNEL) return;
      const change = parseChange(message);
      if (!change) return;
      for (const l of this.listeners) {
        try {
          l(change);
        } catch (err) {
          this.logger.warn({ err }, 'a change listener threw');
        }
      }
    });
  }

  get size(): number {
    return this.listeners.size;
  }

  /**
   * Resolves once changes published from now on reach `listener`; returns its remover.
   * Commands on one connection run in order, so an UNSUBSCRIBE sent when the last
   * listener left and a SUBSCRIBE sent right after for a new one leave it subscribed.
   */
  async add(listener: Listener): Promise<() => void> {
    this.listeners.add(listener);
    if (!this.subscribed) this.subscribed = this.whenReady().then(() => this.subscriber.subscribe(CHANGES_CHANNEL));
    try {
      await this.subscribed;
    } catch (err) {
      this.remove(listener);
      throw err;
    }
    return () => this.remove(listener);
  }

  private whenReady(): Promise<void> {
    if (this.subscriber.status === 'ready') return Promise.resolve();
    if (this.subscriber.status === 'end') return Promise.reject(new Error('the change feed connection was closed'));
    return new Promise((resolve, reject) => {
      const onReady = () => {
        this.subscriber.off('end', onEnd);
        resolve();
      };
      const onEnd = () => {
        this.subscriber.off('ready', onReady);
        reject(new Error('the change feed connection was closed'));
      };
      this.subscriber.once('ready', onReady);
      this.subscriber.once('end', onEnd);
    });
  }

  private remove(listener: Listener): void {
    if (!this.listeners.delete(listener) || this.listeners.size > 0) return;
    this.subscribed = undefined;
    this.subscriber.unsubscribe(CHANGES_CHANNEL).catch((err: unknown) => this.logger.debug({ err }, 'unsubscribe failed'));
  }

  async stop(): Promise<void> {
    this.listeners.clear();
    this.subscriber.disconnect();
  }
}

/** Proxies close idle connections after a minute or so; a comment line keeps one alive. */
export const HEARTBEAT_MS = 15_000;
/** A client this far behind is not reading; it is dropped rather than buffered forever. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * GET /api/events: server-sent events, `event: run` with `{"id","status","task"}` for every
 * run change in the cluster. Registered under /api, so the bearer token is required: the
 * dashboard reads it with fetch() and a stream reader, since EventSource cannot send the
 * Authorization header and the token must never go into a URL.
 */
export const liveRoutes: FastifyPluginAsync<{ feed: ChangeFeed; heartbeatMs?: number }> = async (
  app,
  { feed, heartbeatMs = HEARTBEAT_MS },
) => {
  const open = new Set<ServerResponse>();

  // Server close waits for open requests, and these never end on their own.
  app.addHook('preClose', async () => {
    for (const res of open) res.end();
  });

  app.get('/events', async (req, reply) => {
    const res = reply.raw;
    const send = (text: string): void => {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        res.destroy();
        return;
      }
      res.write(text);
    };
    // Subscribed before the response starts: an error answers with a status, and every
    // change after the `ready` event is delivered.
    const remove = await feed.add((c) => send(`event: run\ndata: ${JSON.stringify({ id: c.id, status: c.status, task: c.task })}\n\n`));
    reply.hijack();
    // The client may have gone while the subscription was confirmed: 'close' has fired.
    if (res.destroyed || req.raw.socket.destroyed) {
      remove();
      return;
    }
    open.add(res);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    send(`retry: 3000\nevent: ready\ndata: {}\n\n`);
    const heartbeat = setInterval(() => send(`: ping ${Date.now()}\n\n`), heartbeatMs);
    heartbeat.unref();
    res.on('close', () => {
      clearInterval(heartbeat);
      remove();
      open.delete(res);
    });
    req.log.debug({ clients: feed.size }, 'live view connected');
  });
};
