import type { Document } from 'mongodb';

/**
 * The hourly rollup as one aggregation pipeline, built without a server so it can be
 * tested as data. It groups the window's app starts by (hour, platform, appVersion) and
 * `$merge`s each group into the target on that key, replacing what an earlier run wrote
 * for it: running it twice for the same hours gives the same rows.
 */

/**
 * `approximate`: `$percentile` with method 'approximate' (MongoDB 7.0+; t-digest, small
 * memory). `sorted`: for older servers (4.2+), every value of a group is collected in
 * order and the nearest-rank value picked: exact, but a group's values must fit the
 * 100 MB `$group` limit (allowDiskUse lifts it).
 */
export type PercentileMethod = 'approximate' | 'sorted';

export interface RollupOptions {
  /** First hour (inclusive) and end (exclusive), both on the hour. */
  readonly from: Date;
  readonly to: Date;
  readonly into: string;
  readonly method: PercentileMethod;
  /** When this computation ran: stored on every row. */
  readonly computedAt: Date;
  readonly timeField?: string;
  readonly valueField?: string;
}

/** Stored for a missing platform or appVersion: `$merge` refuses null or missing `on` fields. */
export const UNKNOWN = 'unknown';
export const MERGE_KEY = ['hour', 'platform', 'appVersion'] as const;
const PERCENTILES = [0.5, 0.95] as const;

export function rollupPipeline(o: RollupOptions): Document[] {
  const time = `$${o.timeField ?? 'createdAt'}`;
  const value = `$${o.valueField ?? 'startMs'}`;
  // $dateTrunc would be shorter but needs 5.0; $dateFromParts works wherever $merge does.
  const hour = { $dateFromParts: { year: { $year: time }, month: { $month: time }, day: { $dayOfMonth: time }, hour: { $hour: time } } };
  const key = { hour, platform: { $ifNull: ['$platform', UNKNOWN] }, appVersion: { $ifNull: ['$appVersion', UNKNOWN] } };
  const match = { $match: { [o.timeField ?? 'createdAt']: { $gte: o.from, $lt: o.to } } };
  const numeric = (v: string) => ({ $in: [{ $type: v }, ['double', 'int', 'long', 'decimal']] });

  const stages: Document[] =
    o.method === 'approximate'
      ? [
          match,
          {
            $group: {
              _id: key,
              count: { $sum: 1 },
              n: { $sum: { $cond: [numeric(value), 1, 0] } },
              p: { $percentile: { input: value, p: [...PERCENTILES], method: 'approximate' } },
            },
          },
        ]
      : [
          match,
          // Sorted before grouping, so each group's pushed values arrive in order.
          { $sort: { [o.valueField ?? 'startMs']: 1 } },
          { $group: { _id: key, count: { $sum: 1 }, values: { $push: value } } },
          { $set: { values: { $filter: { input: '$values', cond: numeric('$$this') } } } },
          { $set: { n: { $size: '$values' } } },
          {
            $set: {
              // Nearest rank: the ceil(p·n)-th smallest value; null for a group with none.
              p: PERCENTILES.map((p) => ({
                $cond: [{ $eq: ['$n', 0] }, null, { $arrayElemAt: ['$values', { $subtract: [{ $ceil: { $multiply: [p, '$n'] } }, 1] }] }],
              })),
            },
          },
        ];

  return [
    ...stages,
    {
      $project: {
        _id: 0,
        hour: '$_id.hour',
        platform: '$_id.platform',
        appVersion: '$_id.appVersion',
        count: 1,
        startMs: { n: '$n', p50: { $arrayElemAt: ['$p', 0] }, p95: { $arrayElemAt: ['$p', 1] } },
        percentileMethod: { $literal: o.method },
        computedAt: { $literal: o.computedAt },
      },
    },
    { $merge: { into: o.into, on: [...MERGE_KEY], whenMatched: 'replace', whenNotMatched: 'insert' } },
  ];
}

const HOUR_MS = 3_600_000;

/** The last `hours` complete hours before `nowMs`. */
export function window(nowMs: number, hours: number): { from: Date; to: Date } {
  const to = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
  return { from: new Date(to - hours * HOUR_MS), to: new Date(to) };
}

/** `$percentile` exists from MongoDB 7.0. */
export function methodFor(serverVersion: string): PercentileMethod {
  return Number(serverVersion.split('.')[0]) >= 7 ? 'approximate' : 'sorted';
}
