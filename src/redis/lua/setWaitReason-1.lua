--[[
  Records why a node refused to take a queued run, for "why does it wait". Written only
  while the run is queued, so a run that has started meanwhile is not marked and a deleted
  one is not re-created.

  Input:
    KEYS[1] run hash

    ARGV[1] reason
    ARGV[2] at (epoch ms)
    ARGV[3] the node that refused

  Output:
    1  written
    0  refused: the run is not queued (or does not exist)
]]
local runKey = KEYS[1]

if redis.call('HGET', runKey, 'status') ~= 'queued' then return 0 end
redis.call('HSET', runKey, 'waitReason', ARGV[1], 'waitReasonAt', ARGV[2], 'waitReasonNode', ARGV[3])
return 1
