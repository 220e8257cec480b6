import type { Redis } from 'ioredis';
import type { Bid } from './bid.js';

/**
 * The auction store, in Redis (layout in README.md). All keys of one auction share the hash
 * tag {<auctionId>}, so the script below also runs on Redis Cluster.
 */

export const auctionKey = (id: string) => `auction:{${id}}`;
export const bidsKey = (id: string) => `auction:{${id}}:bids`;
export const resultKey = (id: string, bidId: string) => `auction:{${id}}:result:${bidId}`;
/** Where each accepted bid is published, for live views (and the tests' timing). */
export const channel = (id: string) => `auction:${id}:bids`;

export type Rejection = 'auction_not_found' | 'auction_closed' | 'auction_ended' | 'bid_too_low';

export type BidOutcome =
  | { accepted: true; auctionId: string; highestBid: number; endsAt: string; extended: boolean }
  | { accepted: false; auctionId: string; reason: Rejection; highestBid?: number; minimumBid?: number; endsAt?: string };

/**
 * Places one bid: every check and write in one script, so two bids can never both beat
 * the same highest bid, and the end time moves only with the bid that moved it.
 * Time is Redis's own clock (TIME), one clock for every container on every node; the
 * bidder's placedAt is only recorded.
 *   KEYS[1] auction:{id}            hash: status (open|closed), endsAt (ms), startingPrice,
 *                                   highestBid, highestBidder, lastBidAt (ms)
 *   KEYS[2] auction:{id}:bids       list: accepted bids as JSON, in order
 *   KEYS[3] auction:{id}:result:<bidId>  this bid's answer, kept resultTtlMs: a retried run
 *                                   (same bidId) gets the same answer and never bids twice
 *   ARGV    amount, bidder, windowMs, minIncrement, placedAt ('' = none), bidId, resultTtlMs, channel
 *   returns the answer as JSON with numbers as strings (cjson prints 14 digits at most):
 *           {accepted, reason?, highestBid?, minimumBid?, endsAt?, extended?}
 */
const PLACE_BID = `
local prior = redis.call('GET', KEYS[3])
if prior then return prior end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local amount, windowMs, minIncrement = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
local int = function(n) return string.format('%.0f', n) end

local a = redis.call('HMGET', KEYS[1], 'status', 'endsAt', 'highestBid', 'startingPrice')
local answer
if not a[1] then
  answer = { accepted = false, reason = 'auction_not_found' }
elseif a[1] ~= 'open' then
  answer = { accepted = false, reason = 'auction_closed' }
else
  local endsAt = tonumber(a[2])
  if not endsAt then return redis.error_reply('auction ' .. KEYS[1] .. ' has no numeric endsAt') end
  local highest = tonumber(a[3])
  local minimum = highest and (highest + minIncrement) or (tonumber(a[4]) or 0)
  if now >= endsAt then
    answer = { accepted = false, reason = 'auction_ended', endsAt = int(endsAt) }
  elseif amount < minimum then
    answer = { accepted = false, reason = 'bid_too_low', highestBid = highest and int(highest), minimumBid = int(minimum), endsAt = int(endsAt) }
  else
    -- Anti-sniping: a bid in the last window leaves the others a whole window to answer.
    local extended = now >= endsAt - windowMs
    if extended then endsAt = now + windowMs end
    redis.call('HSET', KEYS[1], 'highestBid', int(amount), 'highestBidder', ARGV[2], 'endsAt', int(endsAt), 'lastBidAt', int(now))
    local record = cjson.encode({ bidder = ARGV[2], amount = int(amount), at = int(now), placedAt = ARGV[5], endsAt = int(endsAt), extended = extended })
    redis.call('RPUSH', KEYS[2], record)
    redis.call('PUBLISH', ARGV[8], record)
    answer = { accepted = true, highestBid = int(amount), endsAt = int(endsAt), extended = extended }
  end
end
local encoded = cjson.encode(answer)
if ARGV[6] ~= '' then redis.call('SET', KEYS[3], encoded, 'PX', ARGV[7]) end
return encoded
`;

export interface PlaceOptions {
  readonly windowMs: number;
  readonly minIncrement: number;
  /** Same id on a retry of the same event (runlet's run id): see KEYS[3] above. */
  readonly bidId: string;
  readonly resultTtlMs: number;
}

export async function placeBid(redis: Redis, bid: Bid, opts: PlaceOptions): Promise<BidOutcome> {
  const id = bid.auctionId;
  const raw = (await redis.eval(
    PLACE_BID,
    3,
    auctionKey(id),
    bidsKey(id),
    resultKey(id, opts.bidId),
    bid.amount,
    bid.bidder,
    opts.windowMs,
    opts.minIncrement,
    bid.placedAt === undefined ? '' : new Date(bid.placedAt).toISOString(),
    opts.bidId,
    opts.resultTtlMs,
    channel(id),
  )) as string;
  const r = JSON.parse(raw) as Record<string, string | boolean | undefined>;
  const num = (v: unknown) => (typeof v === 'string' ? Number(v) : undefined);
  const iso = (v: unknown) => (typeof v === 'string' ? new Date(Number(v)).toISOString() : undefined);
  if (r.accepted === true)
    return { accepted: true, auctionId: id, highestBid: num(r.highestBid)!, endsAt: iso(r.endsAt)!, extended: r.extended === true };
  return {
    accepted: false,
    auctionId: id,
    reason: r.reason as Rejection,
    ...(r.highestBid !== undefined && { highestBid: num(r.highestBid) }),
    ...(r.minimumBid !== undefined && { minimumBid: num(r.minimumBid) }),
    ...(r.endsAt !== undefined && { endsAt: iso(r.endsAt) }),
  };
}
