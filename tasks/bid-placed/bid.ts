import { TaskError } from '../lib/task.js';

/** A bid as the task accepts it: amounts in the currency's minor unit (cents), whole numbers. */
export interface Bid {
  readonly auctionId: string;
  readonly bidder: string;
  readonly amount: number;
  /** ms since the epoch; when the bidder placed it, as they say (recorded, not trusted for timing). */
  readonly placedAt?: number;
}

const ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The payload as sent (a webhook body, or a queue job's data as JSON) checked for shape
 * and types. A problem here is the sender's bug, so it is a TaskError: the run fails
 * (exit 2) with this message, and retrying it could never succeed.
 */
export function parseBid(text: string | undefined): Bid {
  if (text === undefined || text.trim() === '')
    throw new TaskError('invalid bid: the payload is empty (expected {"auctionId", "bidder", "amount", "placedAt"?})');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TaskError(`invalid bid: the payload is not JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TaskError('invalid bid: expected a JSON object');
  const b = raw as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof b.auctionId !== 'string' || !ID.test(b.auctionId))
    problems.push('auctionId must be 1-128 characters of letters, digits and _ . : -');
  if (typeof b.bidder !== 'string' || b.bidder.trim() === '' || b.bidder.length > 200)
    problems.push('bidder must be a non-empty string of at most 200 characters');
  if (typeof b.amount !== 'number' || !Number.isSafeInteger(b.amount) || b.amount <= 0) {
    problems.push(`amount must be a positive whole number in minor units (cents), got ${JSON.stringify(b.amount)}`);
  }
  let placedAt: number | undefined;
  if (b.placedAt !== undefined) {
    placedAt = typeof b.placedAt === 'string' ? Date.parse(b.placedAt) : typeof b.placedAt === 'number' ? b.placedAt : Number.NaN;
    if (!Number.isFinite(placedAt)) problems.push('placedAt must be an ISO 8601 time or ms since the epoch');
  }
  if (problems.length > 0) throw new TaskError(`invalid bid: ${problems.join('; ')}`);
  return { auctionId: b.auctionId as string, bidder: b.bidder as string, amount: b.amount as number, placedAt };
}
