--[[
  Writes a running attempt's log tail and where it ends, fenced by the attempt and its claim: an attempt
  the run has moved past (declared lost and retried while its daemon was frozen or cut off)
  cannot overwrite the tail of the attempt that runs now.

  Input:
    KEYS[1] run hash
    KEYS[2] the run's log tail

    ARGV[1] the attempt the tail belongs to (a record without `attempt` is at attempt 1)
    ARGV[2] the tail
    ARGV[3] the byte offset in that attempt's output where the tail ends
    ARGV[4] the claim token of the writer, or '' (see guardAttempt: a writer whose claim was
            taken over by an adopter writes nothing)

  Output:
     1  written
     0  refused: another attempt or claim is current
    -1  no such run (nothing written, so a deleted run is not re-created)
]]
local runKey = KEYS[1]
local logsKey = KEYS[2]

if redis.call('EXISTS', runKey) == 0 then return -1 end
if (redis.call('HGET', runKey, 'attempt') or '1') ~= ARGV[1] then return 0 end
if ARGV[4] ~= '' and redis.call('HGET', runKey, 'claim') ~= ARGV[4] then return 0 end
redis.call('SET', logsKey, ARGV[2])
redis.call('HSET', runKey, 'logAttempt', ARGV[1], 'logBytes', ARGV[3])
return 1
