--[[
  Takes one task's change-stream lease if no one holds it, with a fence larger than every
  earlier holder's. One script so that no two holders can ever get the same fence.

  Input:
    KEYS[1] the stream's lease
    KEYS[2] the stream's fence

    ARGV[1] holder id (daemon id)
    ARGV[2] lease length (ms)

  Output:
    { 1, fence }  acquired: the fence INCR'd, the lease set to "holder|fence" (SET NX PX)
    { 0, pttl }   someone holds it: its remaining ms (-1: a lease without expiry)
]]
local leaseKey = KEYS[1]
local fenceKey = KEYS[2]

local ttl = redis.call('PTTL', leaseKey)
if ttl ~= -2 then return { 0, ttl } end
local fence = redis.call('INCR', fenceKey)
redis.call('SET', leaseKey, ARGV[1] .. '|' .. fence, 'NX', 'PX', ARGV[2])
return { 1, fence }
