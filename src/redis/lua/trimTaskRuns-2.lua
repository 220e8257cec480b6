--[[
  Retention of one task: deletes its oldest ended runs beyond the newest ARGV[1], then, with
  a cutoff, its ended runs created before it. A run still in progress is never deleted,
  however old.

  Input:
    KEYS[1] the task's runs zset
    KEYS[2] all-runs zset

    ARGV[1] runs to keep
    ARGV[2] run key prefix (keys.runPrefix(): a run's hash is this plus its id)
    ARGV[3] the suffixes of a run's other keys, comma-separated (keys.runPartSuffixes())
    ARGV[4] terminal statuses, comma-separated
    ARGV[5] (optional) age cutoff: runs created before this epoch ms go too ('' = none)
    ARGV[6] (optional) at most this many runs looked at for the cutoff (default 1000)
  The run keys are joined here from ids read from KEYS[1], which is why their parts come
  as arguments.

  Output: the number of runs deleted
]]
--- @include "deleteIfEnded"

local taskRunsKey = KEYS[1]
local allRunsKey = KEYS[2]

local keep = tonumber(ARGV[1])
local runPrefix = ARGV[2]
local partSuffixes = ARGV[3]
local terminals = ARGV[4]
local cutoff = ARGV[5]

local deleted = 0
local function deleteEnded(ids)
  for _, id in ipairs(ids) do
    if deleteIfEnded(runPrefix .. id, partSuffixes, terminals) then
      redis.call('ZREM', taskRunsKey, id)
      redis.call('ZREM', allRunsKey, id)
      deleted = deleted + 1
    end
  end
end

local total = redis.call('ZCARD', taskRunsKey)
if total > keep then deleteEnded(redis.call('ZRANGE', taskRunsKey, 0, total - keep - 1)) end
if cutoff and cutoff ~= '' then
  deleteEnded(redis.call('ZRANGEBYSCORE', taskRunsKey, '-inf', '(' .. cutoff, 'LIMIT', 0, tonumber(ARGV[6] or '1000')))
end
return deleted
