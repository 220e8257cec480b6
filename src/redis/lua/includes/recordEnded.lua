--[[
  Appends { run, task, status } to the ended-runs stream. Called by the script that writes
  the terminal status, so no terminal status is ever recorded without its entry (a daemon
  dying right after can't lose a chained run or leave a waiter hanging). The stream is
  capped at about `maxlen` entries: readers are expected to keep up.
]]
local function recordEnded(endedKey, maxlen, runId, task, status)
  redis.call('XADD', endedKey, 'MAXLEN', '~', maxlen, '*', 'run', runId, 'task', task, 'status', status)
end
