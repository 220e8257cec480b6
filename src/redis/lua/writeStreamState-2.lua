--[[
  Writes fields of a change stream's state hash, fenced: only the latest lease holder
  writes the state, so a deposed holder cannot overwrite its successor's.

  Input:
    KEYS[1] the stream's state hash
    KEYS[2] the stream's fence

    ARGV[1] the writer's fence
    ARGV[2..] field/value pairs

  Output:
    1  written
    0  refused: the fence has moved on
]]
local stateKey = KEYS[1]
local fenceKey = KEYS[2]

if redis.call('GET', fenceKey) ~= ARGV[1] then return 0 end
redis.call('HSET', stateKey, unpack(ARGV, 2))
return 1
