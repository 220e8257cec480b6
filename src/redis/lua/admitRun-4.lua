--[[
  The task gate, on the way in: gives a queued run one of its task's slots, or parks it
  until one is free. A task's cluster-wide limit (`concurrency`, unless `overlap: allow`) is
  enforced here, once per run, instead of by a queue per task: the run queues are per pool,
  and only runs that hold a slot are ever in them.

  A slot is held from admission until the run is terminal (retries included: a run waiting
  for its next attempt is still in progress, as in Temporal's and Kubernetes' overlap
  rules), and freed by freeSlot-5.lua. Admitting a run that already holds a slot says so
  again, so an outbox recovery or a second daemon re-admitting the same run is harmless;
  a parked run keeps its place (ZADD NX).

  Input:
    KEYS[1] the task's slots zset (run id → admitted at)
    KEYS[2] the task's parked zset (run id → parked at)
    KEYS[3] set of tasks holding slots
    KEYS[4] set of tasks with parked runs

    ARGV[1] run id
    ARGV[2] the task's limit (0: none)
    ARGV[3] now (epoch ms)
    ARGV[4] task name

  Output:
    1  admitted: the run holds a slot; add its queue job
    0  parked: it gets a slot when one is freed (freeSlot-5.lua)
]]
local slotsKey = KEYS[1]
local parkedKey = KEYS[2]
local slottedKey = KEYS[3]
local parkedTasksKey = KEYS[4]
local runId = ARGV[1]
local limit = tonumber(ARGV[2])

if redis.call('ZSCORE', slotsKey, runId) then return 1 end
-- First come, first served: a run arriving while others are parked parks behind them, even
-- if a slot is free this instant (it was freed for the head of the line, which freeSlot
-- admitted in the same step).
if limit == 0 or (redis.call('ZCARD', slotsKey) < limit and redis.call('ZCARD', parkedKey) == 0) then
  redis.call('ZADD', slotsKey, ARGV[3], runId)
  redis.call('SADD', slottedKey, ARGV[4])
  return 1
end
redis.call('ZADD', parkedKey, 'NX', ARGV[3], runId)
redis.call('SADD', parkedTasksKey, ARGV[4])
return 0
