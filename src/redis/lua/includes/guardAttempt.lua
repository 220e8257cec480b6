--[[
  The guard of the scripts that write for one attempt of a run (claimRun, endAttempt,
  fencedTransition): the status guard, then the fence. The fence is the run's current attempt
  and, when the writer names one, the claim that holds it (the token its claimant or adopter
  wrote): a writer whose attempt the run has moved past, or whose claim another daemon took
  over (adoption, or a daemon that judged the holder dead), writes nothing. Checked in the
  script that writes, so nothing can land between the check and the write.
  Input:
    runKey   the run's hash
    change   the status change (statusChange in writeStatus)
    attempt  the attempt the writer holds (a record without `attempt` is at attempt 1)
    claim    the claim token the writer holds, or '' to check the attempt alone (a claimant,
             which writes the first token; tools)
  Output:
     1  the write is allowed
     0  refused: the current status is not allowed, or another attempt or claim is current
    -1  no such run
]]
--- @include "guardStatus"
local function guardAttempt(runKey, change, attempt, claim)
  local code = guardStatus(runKey, change.status, change.allowed, change.terminals)
  if code ~= 1 then return code end
  if (redis.call('HGET', runKey, 'attempt') or '1') ~= attempt then return 0 end
  if claim ~= nil and claim ~= '' and redis.call('HGET', runKey, 'claim') ~= claim then return 0 end
  return 1
end
