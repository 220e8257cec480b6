import type Docker from 'dockerode';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';

/**
 * Delivers a payload on a container's stdin: attached before start (the container is created
 * with OpenStdin and StdinOnce, so the engine closes its stdin when this one attach ends),
 * the bytes written, then EOF.
 *
 * The write is never awaited. A program that doesn't read stdin leaves it pending (the pipe
 * holds 64 KiB) until the container exits and the engine drops the connection; waiting on it
 * would hang the run, and its EPIPE/reset is expected, so it is only logged at debug.
 */
export class StdinFeed {
  protected constructor(private readonly socket: Duplex) {}

  /** Attaches and starts writing. Throws when the attach fails: the payload can't be delivered. */
  static async open(container: Docker.Container, payload: Buffer, logger: Logger): Promise<StdinFeed> {
    // stdout/stderr are not asked for: output is read from the log, which keeps it all.
    const socket = (await container.attach({ stream: true, stdin: true, stdout: false, stderr: false, hijack: true })) as Duplex;
    socket.on('error', (err) => logger.debug({ err }, 'stdin connection ended early (the program did not read all of its payload)'));
    // Anything the engine sends back is not ours to keep; read it so the socket never stalls.
    socket.resume();
    socket.end(payload);
    return new StdinFeed(socket);
  }

  /**
   * Attaches now and writes nothing yet: for a warm instance, whose stdin carries its one
   * event later (deliver). Opened when the instance is made, so a delivery is one write on a
   * connection already there, not an HTTP upgrade on the hot path.
   */
  static async hold(container: Docker.Container, logger: Logger): Promise<HeldStdin> {
    const socket = (await container.attach({ stream: true, stdin: true, stdout: false, stderr: false, hijack: true })) as Duplex;
    socket.on('error', (err) => logger.debug({ err }, 'stdin connection of a warm instance ended early'));
    socket.resume();
    return new HeldStdin(socket);
  }

  /** After exit (or when the run is abandoned): drops what was not delivered and the connection. */
  close(): void {
    this.socket.destroy();
  }
}

/** A warm instance's stdin: written once, then closed (the engine then closes the container's stdin: StdinOnce). */
export class HeldStdin extends StdinFeed {
  private sent = false;

  constructor(private readonly held: Duplex) {
    super(held);
  }

  /** Whether the connection still stands: a broken one means the shim has exited (or will, on EOF). */
  get open(): boolean {
    return !this.held.destroyed && this.held.writable;
  }

  /** Writes the event and ends the stream. Throws if called twice or on a broken connection. */
  send(bytes: Buffer): void {
    if (this.sent) throw new Error('this warm instance already received its event');
    if (!this.open) throw new Error('the stdin connection of the warm instance is closed');
    this.sent = true;
    this.held.end(bytes);
  }
}
