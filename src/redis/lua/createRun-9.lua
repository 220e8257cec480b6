--[[
  Creates a run unless its dedupe key already names one: the claim that makes a cron tick,
  a webhook event or a change one run however many daemons handle it.

  Input:
    KEYS[1] dedupe key
    KEYS[2] run hash
    KEYS[3] the run's transitions list
    KEYS[4] all-runs zset
    KEYS[5] the task's runs zset
    KEYS[6] outbox zset (a queued run waits there until its queue job is confirmed)
    KEYS[7] ended-runs stream (a run created skipped has ended)
    KEYS[8] the task's cron "last tick" marker; always passed, touched only when ARGV[6]
            is a tick (the key count stays fixed)
    KEYS[9] the run's payload (a string, apart from the hash so that listings never load it)

    ARGV[1] run id
    ARGV[2] now (epoch ms)
    ARGV[3] dedupe key TTL (ms)
    ARGV[4] the initial transition, JSON
    ARGV[5] initial status: 'queued' or 'skipped'
    ARGV[6] the tick (epoch ms) to advance KEYS[8] to if newer; '' = leave it
    ARGV[7] task
    ARGV[8] ended-runs stream max length (approximate)
    ARGV[9] changes channel
    ARGV[10] the payload's JSON text; '' = no payload (JSON text is never empty)
    ARGV[11..] hash field/value pairs

  Output: { runId, code }
    { ARGV[1], 1 }  created by this call
    { other, 0 }    the dedupe key already names run `other`; nothing was written
]]
--- @include "recordEnded"
--- @include "publishChange"

local dedupeKey = KEYS[1]
local runKey = KEYS[2]
local transitionsKey = KEYS[3]
local allRunsKey = KEYS[4]
local taskRunsKey = KEYS[5]
local outboxKey = KEYS[6]
local endedKey = KEYS[7]
local cronMarkerKey = KEYS[8]
local payloadKey = KEYS[9]

local runId = ARGV[1]
local now = ARGV[2]
local status = ARGV[5]
local tick = ARGV[6]
local task = ARGV[7]

local existing = redis.call('GET', dedupeKey)
if existing then return { existing, 0 } end
redis.call('SET', dedupeKey, runId, 'PX', ARGV[3])
local fields = {}
for i = 11, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', runKey, 'id', runId, 'status', status, 'createdAt', now, 'updatedAt', now, unpack(fields))
if ARGV[10] ~= '' then redis.call('SET', payloadKey, ARGV[10]) end
redis.call('RPUSH', transitionsKey, ARGV[4])
redis.call('ZADD', allRunsKey, now, runId)
redis.call('ZADD', taskRunsKey, now, runId)
if status == 'queued' then redis.call('ZADD', outboxKey, now, runId) end
if status == 'skipped' then recordEnded(endedKey, ARGV[8], runId, task, status) end
publishChange(ARGV[9], runId, status, task)
-- The marker only moves forward (graphile-worker's rule): a late claim of an older tick
-- must not move it back under a newer one that is already claimed.
if tick ~= '' then
  local last = tonumber(redis.call('GET', cronMarkerKey) or '0')
  if tonumber(tick) > last then redis.call('SET', cronMarkerKey, tick) end
end
return { runId, 1 }
