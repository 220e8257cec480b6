/**
 * The seam between the change-stream watcher (lease, cursor, dedupe: watcher.ts) and
 * MongoDB (mongo-source.ts). Everything behind it is plain JSON, so the watcher is tested
 * against Redis with an in-test source, and the driver only in the real-replica-set test.
 */

/** One change, already converted to plain JSON (documents as relaxed Extended JSON). */
export interface ChangeEvent {
  /** The event's `_id`: the resume token to reopen the stream after this change. */
  readonly token: unknown;
  readonly operationType: string;
  readonly ns: { readonly db: string; readonly coll: string };
  readonly documentKey?: unknown;
  readonly fullDocument?: unknown;
  readonly updateDescription?: unknown;
  /** The oplog time of the change: seconds and the increment within that second. */
  readonly clusterTime?: { readonly t: number; readonly i: number };
}

/**
 * The stream has read up to `token` and has nothing to deliver before it. Storing it is
 * safe (no change is skipped) and keeps a quiet stream's cursor inside the oplog window,
 * so a restart after a long quiet spell does not fail with history lost.
 */
export interface Checkpoint {
  readonly checkpoint: true;
  readonly token: unknown;
}

export type FeedItem = ChangeEvent | Checkpoint;

export function isCheckpoint(item: FeedItem): item is Checkpoint {
  return 'checkpoint' in item;
}

/**
 * An open stream. Iterating yields items in order; it throws HistoryLost or Invalidated for
 * the outcomes that need a person or a long pause, anything else for a transient failure
 * (reopened from the stored token). close() ends a pending iteration without an error.
 */
export interface ChangeFeed extends AsyncIterable<FeedItem> {
  close(): Promise<void>;
}

export interface ChangeSource {
  /** Opens after `resumeToken`, or at "now" when there is none. Errors surface while iterating. */
  open(resumeToken: unknown | undefined): ChangeFeed;
  /** Frees the connection (on trigger stop). */
  close?(): Promise<void>;
}

/**
 * The stored resume token is older than the oldest change the server still has (the oplog
 * rolled over while no one watched). Resuming can never succeed, so the watcher stops and
 * waits for an operator to reset the stream (which restarts it from "now").
 */
export class HistoryLost extends Error {
  override readonly name = 'HistoryLost';
  constructor(readonly reason: string) {
    super(`the change stream cannot resume: ${reason}`);
  }
}

/**
 * The stream ended with an `invalidate` event (the collection was dropped or renamed, or
 * its database dropped). `token` is that event's, from which a new stream can start after it.
 */
export class Invalidated extends Error {
  override readonly name = 'Invalidated';
  constructor(
    readonly reason: string,
    readonly token?: unknown,
  ) {
    super(`the change stream was invalidated: ${reason}`);
  }
}
