--[[
  Stores a change stream's resume token, fenced: only the latest lease holder writes it, so
  a deposed holder that wakes up late cannot move the cursor back.

  Input:
    KEYS[1] the stream's resume token
    KEYS[2] the stream's fence
    KEYS[3] the stream's state hash

    ARGV[1] the writer's fence
    ARGV[2] token text (canonical EJSON)
    ARGV[3] now (epoch ms)
    ARGV[4] '1' for a change event, '0' for a checkpoint
    ARGV[5] the event's cluster time (epoch ms) or ''

  Output:
    1  stored
    0  refused: the fence has moved on (a newer holder, or a reset, owns the cursor)
]]
local tokenKey = KEYS[1]
local fenceKey = KEYS[2]
local stateKey = KEYS[3]

local now = ARGV[3]

if redis.call('GET', fenceKey) ~= ARGV[1] then return 0 end
redis.call('SET', tokenKey, ARGV[2])
redis.call('HSET', stateKey, 'lastTokenAt', now)
if ARGV[4] == '1' then
  redis.call('HINCRBY', stateKey, 'eventsTotal', 1)
  redis.call('HSET', stateKey, 'lastEventAt', now, 'lastClusterTimeMs', ARGV[5])
end
return 1
