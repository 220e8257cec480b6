--[[
  The status guard of the scripts that change a run's status (transition, endAttempt).
  Input:
    runKey       the run's hash
    newStatus    the status the caller wants to write
    allowed      the statuses it may move from, comma-separated; '*' = any non-terminal one
    terminals    the terminal statuses, comma-separated
  Output:
     1  the move is allowed
     0  refused: the current status is not allowed
    -1  no such run (the hash has no status)
  Terminal statuses are final, except that '*' may move 'lost' to a terminal status: a
  run declared lost when its node vanished gets its real outcome if that node returns.
]]
--- @include "member"
local function guardStatus(runKey, newStatus, allowed, terminals)
  local current = redis.call('HGET', runKey, 'status')
  if not current then return -1 end
  if allowed == '*' then
    if member(terminals, current) then
      if not (current == 'lost' and member(terminals, newStatus)) then return 0 end
    end
  elseif not member(allowed, current) then
    return 0
  end
  return 1
end
