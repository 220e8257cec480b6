--[[
  Adoption: a daemon takes over the claim on a run's attempt whose holder is dead, because
  it can reach that attempt's container (same node) and will wait for it. A compare-and-set
  on the claim the adopter read: of two daemons adopting at once, or an adopter and a daemon
  that declares the attempt lost, one wins; the holder that was thought dead, if it comes
  back, finds its claim gone and writes nothing (guardAttempt). The status is not changed:
  an adopted attempt ends through endAttempt like any other (and a `lost` one may still get
  its real outcome).

  Input:
    KEYS[1] run hash

    ARGV[1] the container's attempt
    ARGV[2] the claim the adopter read in the record ('' when the record had none: a run
            claimed before claims were recorded)
    ARGV[3] the adopter's new claim token
    ARGV[4] the adopter's daemon id
    ARGV[5] statuses an attempt may be adopted in, comma-separated

  Output:
     1  adopted
     0  refused: another attempt or claim is current, or the run is in another status
    -1  no such run
]]
--- @include "member"

local runKey = KEYS[1]
if redis.call('EXISTS', runKey) == 0 then return -1 end
if not member(ARGV[5], redis.call('HGET', runKey, 'status')) then return 0 end
if (redis.call('HGET', runKey, 'attempt') or '1') ~= ARGV[1] then return 0 end
if (redis.call('HGET', runKey, 'claim') or '') ~= ARGV[2] then return 0 end
redis.call('HSET', runKey, 'claim', ARGV[3], 'daemon', ARGV[4])
return 1
