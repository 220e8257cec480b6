/**
 * Where the documents to archive come from, and where they are deleted once archived:
 * a MongoDB collection in production (mongo-source.ts), an array in tests.
 */
export interface SourceDoc {
  /** The document's createdAt: its day and its place in the order. */
  readonly at: Date;
  /** The document as plain JSON (MongoDB relaxed Extended JSON), `_id` included. */
  readonly doc: Record<string, unknown>;
}

export interface DocumentSource {
  /**
   * Documents with createdAt before `before`, in (createdAt, _id) order, read lazily: a
   * caller holding one batch holds no more than that. Documents deleted while a scan is
   * under way are not returned again.
   */
  scan(before: Date): AsyncIterable<SourceDoc>;
  /** Deletes the documents with these ids (as `idOf` gives them); returns how many existed. */
  deleteIds(ids: readonly string[]): Promise<number>;
}
