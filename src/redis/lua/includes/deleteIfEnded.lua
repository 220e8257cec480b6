--[[
  Deletes one run's keys if it has ended, or if its hash is gone (what is left of it).
  Input:
    runKey        the run's hash
    partSuffixes  what follows runKey in the run's other keys, comma-separated (keys.ts)
    terminals     the terminal statuses, comma-separated
  Output: true when deleted, false when the run is still in progress (nothing touched).
]]
--- @include "member"
local function deleteIfEnded(runKey, partSuffixes, terminals)
  local status = redis.call('HGET', runKey, 'status')
  if status and not member(terminals, status) then return false end
  local doomed = { runKey }
  for suffix in string.gmatch(partSuffixes, '([^,]+)') do doomed[#doomed + 1] = runKey .. suffix end
  redis.call('DEL', unpack(doomed))
  return true
end
