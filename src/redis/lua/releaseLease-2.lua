--[[
  Deletes a change-stream lease if it is still the caller's, so another daemon takes over
  at once. A stream left "watching" is marked waiting; an error state stays.

  Input:
    KEYS[1] the stream's lease
    KEYS[2] the stream's state hash

    ARGV[1] the lease's value as acquired: "holder|fence"

  Output:
    1  released
    0  refused: the lease is not ours
]]
local leaseKey = KEYS[1]
local stateKey = KEYS[2]

if redis.call('GET', leaseKey) ~= ARGV[1] then return 0 end
redis.call('DEL', leaseKey)
if redis.call('HGET', stateKey, 'state') == 'watching' then redis.call('HSET', stateKey, 'state', 'waiting', 'holder', '') end
return 1
