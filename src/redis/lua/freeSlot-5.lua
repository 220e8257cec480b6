--[[
  The task gate, on the way out: frees the slot (or the parked place) of a run that ended,
  then admits parked runs, oldest first, while the task has free slots. Each admitted run
  is also put in the outbox in the same step, so its queue job is added even if the caller
  dies before adding it (enqueue.ts recoverOutbox): a freed slot is never lost between the
  run that held it and the next.

  Called by every daemon that sees a run end, and by the periodic sweep: only the call that
  removes the slot admits someone for it, so the same end admits no more than once.
  Called with an empty run id it only admits (the limit was raised by a reload).

  Input:
    KEYS[1] the task's slots zset
    KEYS[2] the task's parked zset
    KEYS[3] set of tasks holding slots
    KEYS[4] set of tasks with parked runs
    KEYS[5] outbox zset

    ARGV[1] run id, or ''
    ARGV[2] the task's limit (0: none)
    ARGV[3] now (epoch ms)
    ARGV[4] task name

  Output:
    the run ids admitted, oldest first (possibly none)
]]
local slotsKey = KEYS[1]
local parkedKey = KEYS[2]
local slottedKey = KEYS[3]
local parkedTasksKey = KEYS[4]
local outboxKey = KEYS[5]
local runId = ARGV[1]
local limit = tonumber(ARGV[2])

if runId ~= '' then
  redis.call('ZREM', slotsKey, runId)
  redis.call('ZREM', parkedKey, runId)
end
local admitted = {}
while redis.call('ZCARD', parkedKey) > 0 and (limit == 0 or redis.call('ZCARD', slotsKey) < limit) do
  local head = redis.call('ZPOPMIN', parkedKey)[1]
  redis.call('ZADD', slotsKey, ARGV[3], head)
  redis.call('ZADD', outboxKey, ARGV[3], head)
  admitted[#admitted + 1] = head
end
if redis.call('ZCARD', slotsKey) == 0 then redis.call('SREM', slottedKey, ARGV[4]) else redis.call('SADD', slottedKey, ARGV[4]) end
if redis.call('ZCARD', parkedKey) == 0 then redis.call('SREM', parkedTasksKey, ARGV[4]) end
return admitted
