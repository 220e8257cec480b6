--[[
  Retention by age across tasks (also those no longer configured): deletes the ended runs
  among the oldest ARGV[7] created before the cutoff, and removes them from their task's
  index. A run still in progress is never deleted.

  Input:
    KEYS[1] all-runs zset

    ARGV[1] age cutoff (epoch ms): runs created before it
    ARGV[2] run key prefix (keys.runPrefix(): a run's hash is this plus its id)
    ARGV[3] the suffixes of a run's other keys, comma-separated (keys.runPartSuffixes())
    ARGV[4] task-runs key prefix   ARGV[5] task-runs key suffix: a task's runs zset is
            prefix .. task .. suffix (keys.taskRunsAffixes())
    ARGV[6] terminal statuses, comma-separated
    ARGV[7] at most this many runs looked at
  The run and task keys are joined here from ids read from KEYS[1] and tasks read from the
  runs, which is why their parts come as arguments.

  Output: { deleted, looked at }: the caller repeats while a full batch was deleted
]]
--- @include "deleteIfEnded"

local allRunsKey = KEYS[1]

local runPrefix = ARGV[2]
local partSuffixes = ARGV[3]
local taskRunsPrefix = ARGV[4]
local taskRunsSuffix = ARGV[5]
local terminals = ARGV[6]

local ids = redis.call('ZRANGEBYSCORE', allRunsKey, '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[7]))
local deleted = 0
for _, id in ipairs(ids) do
  local runKey = runPrefix .. id
  local task = redis.call('HGET', runKey, 'task')
  if deleteIfEnded(runKey, partSuffixes, terminals) then
    redis.call('ZREM', allRunsKey, id)
    if task then redis.call('ZREM', taskRunsPrefix .. task .. taskRunsSuffix, id) end
    deleted = deleted + 1
  end
end
return { deleted, #ids }
