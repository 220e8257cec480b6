--[[
  Tells live views that a run changed: "<run id> <status> <task>" on the changes channel.
  Fire-and-forget: a view that misses it reloads from the records, which stay the truth.
]]
local function publishChange(channel, runId, status, task)
  redis.call('PUBLISH', channel, runId .. ' ' .. status .. ' ' .. task)
end
