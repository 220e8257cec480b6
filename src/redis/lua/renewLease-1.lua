--[[
  Extends a change-stream lease if it is still the caller's.

  Input:
    KEYS[1] the stream's lease

    ARGV[1] the lease's value as acquired: "holder|fence"
    ARGV[2] lease length (ms)

  Output:
    1  renewed
    0  refused: the lease is not ours (taken over, reset or expired)
]]
local leaseKey = KEYS[1]

if redis.call('GET', leaseKey) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', leaseKey, ARGV[2])
return 1
