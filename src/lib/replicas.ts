import { ReplyError, type Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * How a write stands with the replicas, asked after it was applied on the master:
 * - `acked`: at least one replica has it (and everything the master applied before it), so
 *   a Sentinel failover, which promotes the replica with the most data, keeps it;
 * - `unacked`: no replica confirmed it in time (none connected, or lagging): a failover now
 *   could lose it; logged once per such spell, and the caller goes on (availability first);
 * - `unknown`: the connection changed servers while asking (a failover happened meanwhile):
 *   the write may be lost, and the caller writes it again (every write asked about is
 *   idempotent for its writer).
 */
export type ReplicaAnswer = 'acked' | 'unacked' | 'unknown';

/** How long a write waits for a replica's ack. In a healthy pair it takes well under a millisecond. */
export const REPLICA_ACK_TIMEOUT_MS = 500;
/** While no replica answers, each ask waits this long only, so runs are not slowed to wait for nobody. */
const DEGRADED_ACK_TIMEOUT_MS = 10;

/**
 * Waits for a replica to hold what the master applied so far (`WAIT 1 <timeout>`), on a
 * connection of its own, so a slow answer never holds up other commands.
 *
 * WAIT covers the writes of the connection that asks, up to its last one, and replication
 * is one ordered stream: so this connection first makes a write of its own (INCR of `key`),
 * which comes after every write any connection had applied when the ask began; an ack of it
 * is an ack of them all. Asks that arrive while one is out share the next one (a group
 * commit): under load a write costs one extra round trip at most.
 */
export class ReplicaAcks {
  private inFlight?: Promise<ReplicaAnswer>;
  private queued?: Promise<ReplicaAnswer>;
  /** Bumped on each (re)connect: a change during an ask means another server may have answered. */
  private generation = 0;
  private degraded = false;
  private cannotAsk = false;

  constructor(
    private readonly connection: Redis,
    private readonly key: string,
    private readonly logger: Logger,
    private readonly timeoutMs = REPLICA_ACK_TIMEOUT_MS,
  ) {
    // The first ready is the connection's start, not a change of server (unless the
    // connection was ready already: then every ready from now on is a reconnection).
    let started = connection.status === 'ready';
    connection.on('ready', () => {
      if (started) this.generation++;
      started = true;
    });
  }

  /** Resolves once what was applied before this call is on a replica, or why it is not known to be. */
  ask(): Promise<ReplicaAnswer> {
    if (!this.inFlight) return (this.inFlight = this.once().finally(() => (this.inFlight = undefined)));
    // The ask in flight may have made its write before ours was applied: wait for the next.
    return (this.queued ??= this.inFlight.then(() => {
      this.queued = undefined;
      return this.ask();
    }));
  }

  private async once(): Promise<ReplicaAnswer> {
    const generation = this.generation;
    let acked: number;
    try {
      const res = await this.connection
        .pipeline()
        .incr(this.key)
        .call('WAIT', '1', String(this.degraded ? DEGRADED_ACK_TIMEOUT_MS : this.timeoutMs))
        .exec();
      const [incrErr] = res?.[0] ?? [];
      const [waitErr, n] = res?.[1] ?? [];
      const err = incrErr ?? waitErr;
      if (err) return this.refused(err);
      acked = Number(n);
    } catch (err) {
      return this.refused(err as Error);
    }
    if (generation !== this.generation) return 'unknown';
    if (acked >= 1) {
      if (this.degraded) this.logger.info('a replica acknowledges writes again');
      this.degraded = false;
      return 'acked';
    }
    if (!this.degraded)
      this.logger.warn(
        { timeoutMs: this.timeoutMs },
        "no replica acknowledged runlet's writes in time (none connected, or lagging): until one does, a failover could lose the latest writes",
      );
    this.degraded = true;
    return 'unacked';
  }

  /**
   * A refusal by the server (an ACL without WAIT or INCR, a renamed command) will not pass
   * by asking again: said once, and the writes go on unconfirmed. Anything else (the
   * connection dropped) may mean another server: the caller writes again.
   */
  private refused(err: Error): ReplicaAnswer {
    if (!(err instanceof ReplyError)) return 'unknown';
    if (!this.cannotAsk)
      this.logger.warn(
        { err: err.message },
        "cannot ask the replicas whether they have runlet's writes (WAIT refused): a failover could lose the latest writes",
      );
    this.cannotAsk = true;
    return 'unacked';
  }
}
