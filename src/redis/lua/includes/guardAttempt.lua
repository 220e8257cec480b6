--[[
  The guard of the scripts that write for one attempt of a run (claimRun, endAttempt): the
  status guard, then the fence, the run's current attempt. Checked in the script that
  writes, so nothing can land between the check and the write.
  Input:
    runKey   the run's hash
    change   the status change (statusChange in writeStatus)
    attempt  the attempt the writer holds (a record without `attempt` is at attempt 1)
  Output:
     1  the write is allowed
     0  refused: the current status is not allowed, or another attempt is current
    -1  no such run
]]
--- @include "guardStatus"
local function guardAttempt(runKey, change, attempt)
  local code = guardStatus(runKey, change.status, change.allowed, change.terminals)
  if code ~= 1 then return code end
  if (redis.call('HGET', runKey, 'attempt') or '1') ~= attempt then return 0 end
  return 1
end
