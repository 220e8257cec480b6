import { BSON, MongoClient, MongoServerError, type ChangeStream, type ChangeStreamDocument, type Document } from 'mongodb';
import type { MongoTriggerConfig } from '../../config/types.js';
import { HistoryLost, Invalidated, type ChangeEvent, type ChangeFeed, type ChangeSource, type FeedItem } from './source.js';

/** ChangeStreamHistoryLost: the resume point has rolled off the oplog. */
const HISTORY_LOST = 286;
/** ChangeStreamFatalError: the server says this stream can never be resumed (e.g. its token is gone). */
const FATAL = 280;
/** ChangeStreamInvalidated, raised instead of an invalidate event in some resume paths. */
const INVALIDATED = 260;

/** A quiet stream's position is stored at most this often (see Checkpoint in source.ts). */
const CHECKPOINT_EVERY_MS = 10_000;

/** The aggregation pipeline of a task's stream: its operations and `match`, and always `invalidate`. */
export function pipelineOf(m: MongoTriggerConfig): Document[] {
  const wanted: Document = m.match
    ? { $and: [{ operationType: { $in: [...m.operations] } }, m.match] }
    : { operationType: { $in: [...m.operations] } };
  // A user's match must not filter out the invalidate event: without it the server closes
  // the cursor silently, and the watcher would reopen before the drop and loop.
  return [{ $match: { $or: [{ operationType: 'invalidate' }, wanted] } }];
}

/**
 * The real source: `db.collection.watch()` with the driver. Every open after a stored token
 * uses `startAfter`, which resumes like `resumeAfter` and also starts past an invalidate.
 * The client connects lazily, so a daemon starts while MongoDB is down.
 */
export class MongoSource implements ChangeSource {
  private client?: MongoClient;

  constructor(
    private readonly config: MongoTriggerConfig & { url: string },
    private readonly appName = 'runlet',
  ) {}

  open(resumeToken: unknown | undefined): ChangeFeed {
    this.client ??= new MongoClient(this.config.url, { appName: this.appName });
    const coll = this.client.db(this.config.db).collection(this.config.collection);
    const stream = coll.watch(pipelineOf(this.config), {
      fullDocument: this.config.fullDocument,
      ...(resumeToken !== undefined && { startAfter: resumeToken as Document }),
    });
    return new MongoFeed(stream);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.close();
  }
}

class MongoFeed implements ChangeFeed {
  private closed = false;

  constructor(private readonly stream: ChangeStream) {}

  async close(): Promise<void> {
    this.closed = true;
    await this.stream.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<FeedItem> {
    let checkpointAt = 0;
    let checkpoint: string | undefined;
    try {
      while (!this.closed) {
        // tryNext answers null after one empty getMore (the server waits up to a second),
        // which is when the stream's position can be stored without an event.
        const doc = await this.stream.tryNext();
        if (this.closed) return;
        if (doc) {
          if (doc.operationType === 'invalidate')
            throw new Invalidated('the collection was dropped or renamed, or its database dropped (an invalidate event)', doc._id);
          yield toEvent(doc);
          continue;
        }
        const token = this.stream.resumeToken;
        const text = token === undefined || token === null ? undefined : BSON.EJSON.stringify(token as Document);
        // The first one at once: a fresh stream's start is stored before any change arrives.
        if (text !== undefined && text !== checkpoint && (checkpoint === undefined || Date.now() - checkpointAt >= CHECKPOINT_EVERY_MS)) {
          checkpoint = text;
          checkpointAt = Date.now();
          yield { checkpoint: true, token };
        }
      }
    } catch (err) {
      if (this.closed) return;
      throw classify(err);
    }
  }
}

export function classify(err: unknown): unknown {
  if (err instanceof HistoryLost || err instanceof Invalidated) return err;
  if (err instanceof MongoServerError) {
    const what = `${err.codeName ?? `code ${err.code}`}: ${err.message}`;
    if (err.code === HISTORY_LOST || err.code === FATAL) return new HistoryLost(what);
    if (err.code === INVALIDATED) return new Invalidated(what);
  }
  // Network, election, server selection, auth: reopened from the stored token with backoff.
  return err;
}

function toEvent(doc: ChangeStreamDocument): ChangeEvent {
  const d = doc as ChangeStreamDocument & {
    ns?: { db: string; coll?: string };
    documentKey?: Document;
    fullDocument?: Document | null;
    updateDescription?: Document;
    clusterTime?: BSON.Timestamp;
  };
  return {
    token: d._id,
    operationType: d.operationType,
    ns: { db: d.ns?.db ?? '', coll: d.ns?.coll ?? '' },
    ...(d.documentKey !== undefined && { documentKey: plain(d.documentKey) }),
    ...(d.fullDocument !== undefined && d.fullDocument !== null && { fullDocument: plain(d.fullDocument) }),
    ...(d.updateDescription !== undefined && { updateDescription: plain(d.updateDescription) }),
    ...(d.clusterTime && { clusterTime: { t: d.clusterTime.t, i: d.clusterTime.i } }),
  };
}

/** BSON → JSON a task can read: relaxed Extended JSON ({"$oid": …}, {"$date": …}), nothing lost. */
function plain(value: Document): unknown {
  return BSON.EJSON.serialize(value, { relaxed: true });
}
