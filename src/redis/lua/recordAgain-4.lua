--[[
  Records again a run whose record Redis lost while its container ran (emptied, or failed
  over before the record reached the replica), from what its container's labels say: the
  daemon running the container calls it, so the run's outcome is recorded when the container
  ends rather than dropped for want of a record. Written only when the run has no record at
  all: a record that exists, however it got there, is never touched.

  Input:
    KEYS[1] run hash
    KEYS[2] the run's transitions list
    KEYS[3] all-runs zset
    KEYS[4] the task's runs zset

    ARGV[1] run id
    ARGV[2] task
    ARGV[3] status (the attempt's: starting or running)
    ARGV[4] created (epoch ms; the index score)
    ARGV[5] the transition, JSON
    ARGV[6] changes channel
    ARGV[7..] hash field/value pairs

  Output:
     1  recorded
     0  the run has a record: nothing written
]]
--- @include "publishChange"

local runKey = KEYS[1]
local transitionsKey = KEYS[2]
local allRunsKey = KEYS[3]
local taskRunsKey = KEYS[4]

local runId = ARGV[1]
local task = ARGV[2]
local status = ARGV[3]
local created = ARGV[4]

if redis.call('EXISTS', runKey) == 1 then return 0 end
redis.call('HSET', runKey, 'id', runId, 'task', task, 'status', status, 'createdAt', created, 'updatedAt', created, unpack(ARGV, 7))
redis.call('DEL', transitionsKey)
redis.call('RPUSH', transitionsKey, ARGV[5])
redis.call('ZADD', allRunsKey, created, runId)
redis.call('ZADD', taskRunsKey, created, runId)
publishChange(ARGV[6], runId, status, task)
return 1
