--[[
  Ends the run's current attempt: transition's guard and write, plus the attempt's own
  record, log tail and output. Refused unless the attempt that ended is still the run's
  current one, so a late or duplicate writer (a redelivered job, a settling daemon, a
  daemon that was frozen or cut off while its run was declared lost and retried) ends an
  attempt at most once, and never writes over what a later attempt recorded.

  Input:
    KEYS[1] run hash
    KEYS[2] the run's transitions list
    KEYS[3] the run's attempts list
    KEYS[4] outbox zset
    KEYS[5] ended-runs stream
    KEYS[6] the run's log tail
    KEYS[7] the run's output hash

    ARGV[1..7] as transition: new status, now, transition JSON, allowed current statuses,
               terminal statuses, ended-runs stream max length, changes channel
    ARGV[8]  the attempt that ended (a record without `attempt` is at attempt 1)
    ARGV[9]  the claim token the writer holds ('' when it holds none: see guardAttempt)
    ARGV[10] its AttemptRecord, JSON
    ARGV[11] hash fields to delete, comma-separated
    ARGV[12] what the attempt left, JSON { logTail, logBytes?, output?, outputError? }, or ''
             when it left nothing to record (a lost attempt: the record keeps what it has).
             The tail replaces the run's (its end, logAttempt/logBytes, with it: cleared
             when logBytes is absent); the output replaces the run's, so the record shows
             the latest attempt.
    ARGV[13..] hash field/value pairs to set

  When the new status is 'queued' (a retry), the run goes back into the outbox until its
  retry job is confirmed, as a new run does.

  Output:
     1  applied
     0  refused: the status is not allowed, or another attempt or claim is current
    -1  no such run
]]
--- @include "guardAttempt"
--- @include "writeStatus"

local runKey = KEYS[1]
local transitionsKey = KEYS[2]
local attemptsKey = KEYS[3]
local outboxKey = KEYS[4]
local endedKey = KEYS[5]
local logsKey = KEYS[6]
local outputKey = KEYS[7]

local attempt = ARGV[8]
local claim = ARGV[9]

local change = statusChange(ARGV)
-- The fence: a writer whose attempt the run has moved past, or whose claim another daemon
-- took over, writes nothing here.
local code = guardAttempt(runKey, change, attempt, claim)
if code ~= 1 then return code end
for field in string.gmatch(ARGV[11], '([^,]+)') do redis.call('HDEL', runKey, field) end
if ARGV[12] ~= '' then
  local left = cjson.decode(ARGV[12])
  redis.call('SET', logsKey, left.logTail)
  if left.logBytes then
    redis.call('HSET', runKey, 'logAttempt', attempt, 'logBytes', tostring(left.logBytes))
  else
    redis.call('HDEL', runKey, 'logAttempt', 'logBytes')
  end
  redis.call('DEL', outputKey)
  if left.output then redis.call('HSET', outputKey, 'text', left.output) end
  if left.outputError then redis.call('HSET', outputKey, 'error', left.outputError) end
end
redis.call('RPUSH', attemptsKey, ARGV[10])
local runId = writeStatus(runKey, transitionsKey, endedKey, change, { unpack(ARGV, 13) })
if change.status == 'queued' then redis.call('ZADD', outboxKey, change.now, runId) end
return 1
