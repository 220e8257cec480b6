--[[
  The claim: moves a run from `queued` to `starting` for one claimant, the worker that will
  create its container. Only one claimant wins a run's attempt; a repeat by the claimant
  that won (ioredis resends a command whose connection dropped before the reply, after the
  script ran) answers 1 again, so that worker goes on instead of leaving the run `starting`
  with no one to start it.

  Input:
    KEYS[1] run hash
    KEYS[2] the run's transitions list
    KEYS[3] ended-runs stream

    ARGV[1..7] as transition: new status ('starting'), now, transition JSON, allowed current
               statuses ('queued'), terminal statuses, ended-runs stream max length,
               changes channel
    ARGV[8]  the attempt the claimant read (a record without `attempt` is at attempt 1)
    ARGV[9]  the claim token: unique per claiming call, stored as the hash field `claim`
    ARGV[10..] hash field/value pairs to set

  Output:
     1  applied: claimed now, or already claimed by this token and still `starting`
     0  refused: not queued (another claimant won), or the run is at another attempt
    -1  no such run
]]
--- @include "guardAttempt"
--- @include "writeStatus"

local change = statusChange(ARGV)
local runKey = KEYS[1]
local transitionsKey = KEYS[2]
local endedKey = KEYS[3]
local claim = { attempt = ARGV[8], token = ARGV[9] }

-- A repeat by the claimant that won: answered as applied, and nothing written again. Only
-- while `starting`: past it, the claimant has had its answer and moved the run on, so a
-- repeat can't be a resend; a run queued again waits for its next attempt's claim.
if redis.call('HGET', runKey, 'status') == change.status and redis.call('HGET', runKey, 'claim') == claim.token then return 1 end
local code = guardAttempt(runKey, change, claim.attempt, '')
if code ~= 1 then return code end
local fields = { unpack(ARGV, 10) }
table.insert(fields, 'claim')
table.insert(fields, claim.token)
writeStatus(runKey, transitionsKey, endedKey, change, fields)
return 1
