--[[
  A status change made by the holder of a run's attempt (its container started: `starting`
  to `running`), fenced like an attempt's end: refused unless the attempt is still the run's
  current one and the claim is still the writer's. A worker that was deposed while it created
  the container (frozen or cut off past its lease, and the run declared lost or adopted) is
  told no, and stops the container it started rather than run a second copy of the run.

  Input:
    KEYS[1] run hash
    KEYS[2] the run's transitions list
    KEYS[3] ended-runs stream

    ARGV[1..7] as transition: new status, now, transition JSON, allowed current statuses,
               terminal statuses, ended-runs stream max length, changes channel
    ARGV[8]  the attempt the writer holds (a record without `attempt` is at attempt 1)
    ARGV[9]  the writer's claim token
    ARGV[10..] hash field/value pairs to set

  Output:
     1  applied
     0  refused: the status is not allowed, or another attempt or claim is current
    -1  no such run
]]
--- @include "guardAttempt"
--- @include "writeStatus"

local runKey = KEYS[1]
local transitionsKey = KEYS[2]
local endedKey = KEYS[3]

local change = statusChange(ARGV)
local code = guardAttempt(runKey, change, ARGV[8], ARGV[9])
if code ~= 1 then return code end
writeStatus(runKey, transitionsKey, endedKey, change, { unpack(ARGV, 10) })
return 1
