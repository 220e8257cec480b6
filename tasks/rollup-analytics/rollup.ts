import type { Db } from 'mongodb';
import { MERGE_KEY, methodFor, rollupPipeline, type PercentileMethod } from './pipeline.js';

export interface RollupResult {
  from: string;
  to: string;
  /** Rows in the target for the window after the merge. */
  groups: number;
  method: PercentileMethod;
  serverVersion: string;
}

/** Recomputes [from, to) of `source` into `into`; the same window again replaces the same rows. */
export async function rollup(
  db: Db,
  o: { source: string; into: string; from: Date; to: Date; method?: PercentileMethod },
): Promise<RollupResult> {
  const { version } = await db.admin().buildInfo();
  const method = o.method ?? methodFor(String(version));
  // $merge's `on` fields need a unique index on the target; creating it again is a no-op.
  await db.collection(o.into).createIndex(Object.fromEntries(MERGE_KEY.map((k) => [k, 1])), { unique: true, name: 'rollup_key' });
  const pipeline = rollupPipeline({ from: o.from, to: o.to, into: o.into, method, computedAt: new Date() });
  await db.collection(o.source).aggregate(pipeline, { allowDiskUse: true }).toArray();
  const groups = await db.collection(o.into).countDocuments({ hour: { $gte: o.from, $lt: o.to } });
  return { from: o.from.toISOString(), to: o.to.toISOString(), groups, method, serverVersion: String(version) };
}
