--[[
  The status write of transition and endAttempt, which share their first seven ARGV.

  statusChange(argv) names them:
    argv[1] new status   argv[2] now (epoch ms)   argv[3] the transition, JSON
    argv[4] allowed current statuses, comma-separated ('*' = any non-terminal)
    argv[5] terminal statuses, comma-separated
    argv[6] ended-runs stream max length (approximate)   argv[7] changes channel

  writeStatus(runKey, transitionsKey, endedKey, change, fields), once guardStatus said yes:
  sets status, updatedAt and the field/value pairs `fields` on the run's hash, appends the
  transition, and in the same script the ended-runs entry when the status is terminal (so
  no terminal status is recorded without it) and the notice to live views.
  Returns the run's id.
]]
--- @include "member"
--- @include "recordEnded"
--- @include "publishChange"
local function statusChange(argv)
  return { status = argv[1], now = argv[2], transition = argv[3], allowed = argv[4], terminals = argv[5], endedMaxlen = argv[6], channel = argv[7] }
end

local function writeStatus(runKey, transitionsKey, endedKey, change, fields)
  redis.call('HSET', runKey, 'status', change.status, 'updatedAt', change.now, unpack(fields))
  redis.call('RPUSH', transitionsKey, change.transition)
  local runId = redis.call('HGET', runKey, 'id')
  local task = redis.call('HGET', runKey, 'task')
  if member(change.terminals, change.status) then recordEnded(endedKey, change.endedMaxlen, runId, task, change.status) end
  publishChange(change.channel, runId, change.status, task)
  return runId
end
