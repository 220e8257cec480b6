import { BSON, type Collection, type Document, type Filter } from 'mongodb';
import type { DocumentSource, SourceDoc } from './source.js';

/**
 * The archive's documents from a MongoDB collection. Read in pages by key: each page is a
 * cursor of at most `batchSize` documents after the last one seen, so a long run never
 * holds a cursor open for 45 minutes (cursor and session timeouts), deletes behind it
 * can't disturb it, and one page is all it keeps in memory. Wants an index
 * `{ createdAt: 1, _id: 1 }`.
 */
export class MongoSource implements DocumentSource {
  constructor(
    private readonly coll: Collection,
    private readonly batchSize: number,
  ) {}

  async *scan(before: Date): AsyncIterable<SourceDoc> {
    let last: { at: Date; id: unknown } | undefined;
    for (;;) {
      const filter: Filter<Document> = last
        ? ({
            createdAt: { $lt: before },
            $or: [{ createdAt: { $gt: last.at } }, { createdAt: last.at, _id: { $gt: last.id } }],
          } as Filter<Document>)
        : { createdAt: { $lt: before } };
      const cursor = this.coll.find(filter).sort({ createdAt: 1, _id: 1 }).limit(this.batchSize).batchSize(this.batchSize);
      let n = 0;
      try {
        for await (const raw of cursor) {
          n++;
          last = { at: raw.createdAt as Date, id: raw._id };
          yield { at: raw.createdAt as Date, doc: BSON.EJSON.serialize(raw, { relaxed: true }) as Record<string, unknown> };
        }
      } finally {
        await cursor.close();
      }
      if (n < this.batchSize) return;
    }
  }

  async deleteIds(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const values = ids.map((id) => BSON.EJSON.parse(id, { relaxed: false }));
    const res = await this.coll.deleteMany({ _id: { $in: values } });
    return res.deletedCount;
  }
}
