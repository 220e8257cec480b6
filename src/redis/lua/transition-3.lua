--[[
  Moves a run to a new status if its current status allows it, and records the move.

  Input:
    KEYS[1] run hash
    KEYS[2] the run's transitions list
    KEYS[3] ended-runs stream

    ARGV[1] new status
    ARGV[2] now (epoch ms)
    ARGV[3] the transition, JSON
    ARGV[4] allowed current statuses, comma-separated ('*' = any non-terminal)
    ARGV[5] terminal statuses, comma-separated
    ARGV[6] ended-runs stream max length (approximate)
    ARGV[7] changes channel
    ARGV[8..] hash field/value pairs to set

  Output:
     1  applied
     0  refused: the current status is not allowed (see guardStatus)
    -1  no such run
]]
--- @include "member"
--- @include "guardStatus"
--- @include "recordEnded"
--- @include "publishChange"

local runKey = KEYS[1]
local transitionsKey = KEYS[2]
local endedKey = KEYS[3]

local newStatus = ARGV[1]
local terminals = ARGV[5]

local code = guardStatus(runKey, newStatus, ARGV[4], terminals)
if code ~= 1 then return code end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', runKey, 'status', newStatus, 'updatedAt', ARGV[2], unpack(fields))
redis.call('RPUSH', transitionsKey, ARGV[3])
local runId = redis.call('HGET', runKey, 'id')
local task = redis.call('HGET', runKey, 'task')
if member(terminals, newStatus) then recordEnded(endedKey, ARGV[6], runId, task, newStatus) end
publishChange(ARGV[7], runId, newStatus, task)
return 1
