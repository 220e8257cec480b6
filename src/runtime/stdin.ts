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
  private constructor(private readonly socket: Duplex) {}

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

  /** After exit (or when the run is abandoned): drops what was not delivered and the connection. */
  close(): void {
    this.socket.destroy();
  }
}
