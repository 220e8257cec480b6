--[[
  Forgets a change stream's cursor and lease and moves its fence, so the current holder (if
  any) can store nothing more, notices at its next renew, and whoever acquires next opens
  at "now".

  Input:
    KEYS[1] the stream's resume token
    KEYS[2] the stream's lease
    KEYS[3] the stream's fence
    KEYS[4] the stream's state hash

    ARGV[1] now (epoch ms)

  Output: the new fence
]]
local tokenKey = KEYS[1]
local leaseKey = KEYS[2]
local fenceKey = KEYS[3]
local stateKey = KEYS[4]

redis.call('DEL', tokenKey, leaseKey)
local fence = redis.call('INCR', fenceKey)
redis.call('HSET', stateKey, 'state', 'waiting', 'holder', '', 'retryAt', '', 'resetAt', ARGV[1])
return fence
