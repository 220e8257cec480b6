--[[
  Pauses or resumes a task, stamped with when: the latest change of a task's pause wins,
  whoever writes it and in whatever order (last writer wins, by time). A person's pause or
  resume is stamped now; a daemon putting back what it saw before Redis lost it (emptied, or
  failed over before the change reached the replica) passes the change's own time, and it
  lands only if Redis holds nothing newer for the task. So a resume made on one daemon just
  before Redis was emptied is not undone by another daemon that still saw the task paused.

  Input:
    KEYS[1] paused tasks set
    KEYS[2] hash task -> epoch ms of its latest pause or resume

    ARGV[1] task
    ARGV[2] '1' paused, '0' resumed
    ARGV[3] the change's time (epoch ms), or '' for a change made now (the server's clock,
            one clock for every daemon; never earlier than the change it replaces)

  Output: { code, at, paused }
    { 1, at, paused }  applied, stamped `at`
    { 0, at, paused }  not applied: Redis holds a change of the task at `at`, no older than
                       this one, which left the task paused (1) or not (0)
]]
local pausedKey = KEYS[1]
local timesKey = KEYS[2]

local task = ARGV[1]
local current = tonumber(redis.call('HGET', timesKey, task) or '')
local at
if ARGV[3] == '' then
  local t = redis.call('TIME')
  at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if current and at <= current then at = current + 1 end
else
  at = tonumber(ARGV[3])
  if current and current >= at then return { 0, current, redis.call('SISMEMBER', pausedKey, task) } end
end
if ARGV[2] == '1' then
  redis.call('SADD', pausedKey, task)
else
  redis.call('SREM', pausedKey, task)
end
redis.call('HSET', timesKey, task, tostring(at))
return { 1, at, tonumber(ARGV[2]) }
