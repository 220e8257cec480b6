--[[
  Ends the run's current attempt: transition's guard and write, plus the attempt's own
  record. Refused unless the attempt that ended is still the run's current one, so a late
  or duplicate writer (a redelivered job, a settling daemon) ends an attempt at most once.

  Input:
    KEYS[1] run hash
    KEYS[2] the run's transitions list
    KEYS[3] the run's attempts list
    KEYS[4] outbox zset
    KEYS[5] ended-runs stream

    ARGV[1..7] as transition: new status, now, transition JSON, allowed current statuses,
               terminal statuses, ended-runs stream max length, changes channel
    ARGV[8]  the attempt that ended (a record without `attempt` is at attempt 1)
    ARGV[9]  its AttemptRecord, JSON
    ARGV[10] hash fields to delete, comma-separated
    ARGV[11..] hash field/value pairs to set

  When the new status is 'queued' (a retry), the run goes back into the outbox until its
  retry job is confirmed, as a new run does.

  Output:
     1  applied
     0  refused: the status is not allowed, or another attempt is current
    -1  no such run
]]
--- @include "guardStatus"
--- @include "writeStatus"

local runKey = KEYS[1]
local transitionsKey = KEYS[2]
local attemptsKey = KEYS[3]
local outboxKey = KEYS[4]
local endedKey = KEYS[5]

local change = statusChange(ARGV)
local code = guardStatus(runKey, change.status, change.allowed, change.terminals)
if code ~= 1 then return code end
if (redis.call('HGET', runKey, 'attempt') or '1') ~= ARGV[8] then return 0 end
for field in string.gmatch(ARGV[10], '([^,]+)') do redis.call('HDEL', runKey, field) end
redis.call('RPUSH', attemptsKey, ARGV[9])
local runId = writeStatus(runKey, transitionsKey, endedKey, change, { unpack(ARGV, 11) })
if change.status == 'queued' then redis.call('ZADD', outboxKey, change.now, runId) end
return 1
