/**
 * Lua scripts for the run records. Each runs atomically in Redis, which is what makes the
 * dedupe claim and the status guard hold with several daemons on one Redis.
 */

/**
 * Appends to the ended-runs stream when a run reaches a terminal status. In the same
 * script as the status write, so no terminal status is ever recorded without its entry
 * (a daemon dying right after can't lose a chained run or leave a waiter hanging).
 * The stream is capped: readers are expected to keep up within ~10k ended runs.
 */
export const ENDED_STREAM_MAXLEN = 10000;
const ENDED = (streamKey: string, runId: string, task: string, status: string) =>
  `redis.call('XADD', ${streamKey}, 'MAXLEN', '~', '${ENDED_STREAM_MAXLEN}', '*', 'run', ${runId}, 'task', ${task}, 'status', ${status})`;

/**
 * Tells live views (the dashboard's server-sent events, on any daemon) that a run changed:
 * "<run id> <status> <task>" on one pub/sub channel. Fire-and-forget by design: a view that
 * misses a message reloads from the records, which stay the truth.
 */
export const CHANGES_CHANNEL = 'runlet:changes';
const CHANGED = (runId: string, status: string, task: string) => `redis.call('PUBLISH', '${CHANGES_CHANNEL}', ${runId} .. ' ' .. ${status} .. ' ' .. ${task})`;

/**
 * create-run
 * KEYS[1] dedupe key          KEYS[2] run hash         KEYS[3] transitions list
 * KEYS[4] all-runs zset       KEYS[5] task-runs zset   KEYS[6] outbox zset
 * KEYS[7] ended-runs stream (a run created skipped has ended)   KEYS[8] (optional) cron "last tick" marker
 * ARGV[1] run id   ARGV[2] now (ms)   ARGV[3] dedupe TTL (ms)   ARGV[4] initial transition JSON
 * ARGV[5] initial status   ARGV[6] (optional) tick ms for KEYS[8]   ARGV[7] task
 * ARGV[8..] hash field/value pairs
 * Returns { runId, created } — created is 1 when this call made the run, 0 when the
 * dedupe key already named one (then runId is that run's id and nothing was written).
 */
export const CREATE_RUN = `
local existing = redis.call('GET', KEYS[1])
if existing then return { existing, 0 } end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'status', ARGV[5], 'createdAt', ARGV[2], 'updatedAt', ARGV[2], unpack(fields))
redis.call('RPUSH', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
if ARGV[5] == 'queued' then redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1]) end
if ARGV[5] == 'skipped' then ${ENDED('KEYS[7]', 'ARGV[1]', 'ARGV[7]', 'ARGV[5]')} end
${CHANGED('ARGV[1]', 'ARGV[5]', 'ARGV[7]')}
if KEYS[8] and ARGV[6] ~= '' then
  local last = tonumber(redis.call('GET', KEYS[8]) or '0')
  if tonumber(ARGV[6]) > last then redis.call('SET', KEYS[8], ARGV[6]) end
end
return { ARGV[1], 1 }
`;

/** The status guard shared by transition and end-attempt; its arguments are transition's. */
const STATUS_GUARD = `
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return -1 end
local function member(list, v)
  for item in string.gmatch(list, '([^,]+)') do if item == v then return true end end
  return false
end
if ARGV[4] == '*' then
  if member(ARGV[5], current) then
    if not (current == 'lost' and member(ARGV[5], ARGV[1])) then return 0 end
  end
elseif not member(ARGV[4], current) then
  return 0
end
`;

/**
 * transition
 * KEYS[1] run hash   KEYS[2] transitions list   KEYS[3] ended-runs stream
 * ARGV[1] new status   ARGV[2] now (ms)   ARGV[3] transition JSON
 * ARGV[4] allowed current statuses, comma-separated ('*' = any non-terminal)
 * ARGV[5] terminal statuses, comma-separated   ARGV[6..] hash field/value pairs to set
 * Returns 1 applied; 0 refused (current status not allowed); -1 no such run.
 * Terminal statuses are final, except that '*' may move 'lost' to a terminal status: a
 * run declared lost when its node vanished gets its real outcome if that node returns.
 */
export const TRANSITION = `${STATUS_GUARD}
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updatedAt', ARGV[2], unpack(fields))
redis.call('RPUSH', KEYS[2], ARGV[3])
if member(ARGV[5], ARGV[1]) then ${ENDED('KEYS[3]', "redis.call('HGET', KEYS[1], 'id')", "redis.call('HGET', KEYS[1], 'task')", 'ARGV[1]')} end
${CHANGED("redis.call('HGET', KEYS[1], 'id')", 'ARGV[1]', "redis.call('HGET', KEYS[1], 'task')")}
return 1
`;

/**
 * end-attempt: transition's guard and write, plus the attempt's own record
 * KEYS[1] run hash   KEYS[2] transitions list   KEYS[3] attempts list   KEYS[4] outbox zset
 * KEYS[5] ended-runs stream
 * ARGV[1..5] as transition   ARGV[6] the attempt that ended: refused unless it is the run's
 * current `attempt` (a record without one is at attempt 1)   ARGV[7] AttemptRecord JSON
 * ARGV[8] hash fields to delete, comma-separated   ARGV[9..] hash field/value pairs to set
 * When the new status is 'queued' (a retry), the run goes back into the outbox until its
 * retry job is confirmed, as a new run does.
 * Returns 1 applied; 0 refused (status not allowed, or another attempt is current); -1 no such run.
 */
export const END_ATTEMPT = `${STATUS_GUARD}
if (redis.call('HGET', KEYS[1], 'attempt') or '1') ~= ARGV[6] then return 0 end
for field in string.gmatch(ARGV[8], '([^,]+)') do redis.call('HDEL', KEYS[1], field) end
local fields = {}
for i = 9, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updatedAt', ARGV[2], unpack(fields))
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('RPUSH', KEYS[3], ARGV[7])
if ARGV[1] == 'queued' then redis.call('ZADD', KEYS[4], ARGV[2], redis.call('HGET', KEYS[1], 'id')) end
if member(ARGV[5], ARGV[1]) then ${ENDED('KEYS[5]', "redis.call('HGET', KEYS[1], 'id')", "redis.call('HGET', KEYS[1], 'task')", 'ARGV[1]')} end
${CHANGED("redis.call('HGET', KEYS[1], 'id')", 'ARGV[1]', "redis.call('HGET', KEYS[1], 'task')")}
return 1
`;

/** Deletes one run's keys if it has ended (or its hash is gone); sets `deleted` to true if so. */
const DELETE_IF_ENDED = `
local function deleteIfEnded(prefix, terminals, id)
  local runKey = prefix .. ':run:' .. id
  local status = redis.call('HGET', runKey, 'status')
  local terminal = false
  if status then
    for item in string.gmatch(terminals, '([^,]+)') do if item == status then terminal = true end end
  end
  if status and not terminal then return false end
  redis.call('DEL', runKey, runKey .. ':transitions', runKey .. ':logs', runKey .. ':attempts', runKey .. ':output')
  return true
end
`;

/**
 * trim-task-runs (retention)
 * KEYS[1] task-runs zset   KEYS[2] all-runs zset
 * ARGV[1] runs to keep   ARGV[2] key prefix ("runlet")   ARGV[3] terminal statuses, comma-separated
 * ARGV[4] (optional) age cutoff: runs created before this epoch ms are deleted too ('' = none)
 * ARGV[5] (optional) at most this many runs looked at for the cutoff (default 1000)
 * Deletes the oldest terminal runs beyond the newest ARGV[1], then the terminal runs older than
 * the cutoff; a run still in progress is never deleted, however old. Returns the number deleted.
 */
export const TRIM_TASK_RUNS = `${DELETE_IF_ENDED}
local keep = tonumber(ARGV[1])
local deleted = 0
local function deleteEnded(ids)
  for _, id in ipairs(ids) do
    if deleteIfEnded(ARGV[2], ARGV[3], id) then
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', KEYS[2], id)
      deleted = deleted + 1
    end
  end
end
local total = redis.call('ZCARD', KEYS[1])
if total > keep then deleteEnded(redis.call('ZRANGE', KEYS[1], 0, total - keep - 1)) end
if ARGV[4] and ARGV[4] ~= '' then
  deleteEnded(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4], 'LIMIT', 0, tonumber(ARGV[5] or '1000')))
end
return deleted
`;

/**
 * trim-aged-runs (retention by age, across tasks: also those no longer configured)
 * KEYS[1] all-runs zset
 * ARGV[1] age cutoff (epoch ms): runs created before it   ARGV[2] key prefix   ARGV[3] terminal
 * statuses, comma-separated   ARGV[4] at most this many runs looked at
 * Deletes the ended runs among the oldest ARGV[4] created before the cutoff, and removes them
 * from their task's index. Returns { deleted, looked at }: the caller repeats while a full
 * batch was deleted.
 */
export const TRIM_AGED_RUNS = `${DELETE_IF_ENDED}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local deleted = 0
for _, id in ipairs(ids) do
  local task = redis.call('HGET', ARGV[2] .. ':run:' .. id, 'task')
  if deleteIfEnded(ARGV[2], ARGV[3], id) then
    redis.call('ZREM', KEYS[1], id)
    if task then redis.call('ZREM', ARGV[2] .. ':task:' .. task .. ':runs', id) end
    deleted = deleted + 1
  end
end
return { deleted, #ids }
`;
