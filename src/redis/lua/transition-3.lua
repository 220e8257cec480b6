--[[
  Moves a run to a new status if its current status allows it, and records the move.

  Input:
    KEYS[1] run hash
    KEYS[2] the run's transitions list
    KEYS[3] ended-runs stream

    ARGV[1] new status
    ARGV[2] now (epoch ms)
    ARGV[3] the transition, JSON
    ARGV[4] allowed current statuses, comma-separated ('*' = any non-terminal)
    ARGV[5] terminal statuses, comma-separated
    ARGV[6] ended-runs stream max length (approximate)
    ARGV[7] changes channel
    ARGV[8..] hash field/value pairs to set

  Output:
     1  applied
     0  refused: the current status is not allowed (see guardStatus)
    -1  no such run
]]
--- @include "guardStatus"
--- @include "writeStatus"

local runKey = KEYS[1]
local transitionsKey = KEYS[2]
local endedKey = KEYS[3]

local change = statusChange(ARGV)
local code = guardStatus(runKey, change.status, change.allowed, change.terminals)
if code ~= 1 then return code end
writeStatus(runKey, transitionsKey, endedKey, change, { unpack(ARGV, 8) })
return 1
