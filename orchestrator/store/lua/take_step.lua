-- TAKE_STEP: a process starts a step of an instance and claims it. Steps may run twice at once
-- (the commit's version check keeps one), so a live holder does not stop it; a dead one (its
-- heartbeat expired) counts as the step lost once more.
-- KEYS: procs claims (the shard's; procs is its copy of the heartbeats; claims holds the lost counts too).
-- ARGV: me alive_since id force ('1': claim it even from a live holder; without, a live holder's
-- claim is left and named, for the caller to check it is really alive)
-- Returns {how many times in a row this step's process died holding it, the other live holder or ''}.
local procs, claims = KEYS[1], KEYS[2]
local me, alive_since = ARGV[1], tonumber(ARGV[2])
local m = member(ARGV[3], STEP_CLAIM)
local holder = redis.call('HGET', claims, m)
local count = tonumber(redis.call('HGET', claims, lost_of(m)) or '0')
local other = ''  -- the live holder, when the claim is left to it
if holder and holder ~= me then
  local beat = redis.call('ZSCORE', procs, holder)
  if not beat or tonumber(beat) < alive_since then
    count = redis.call('HINCRBY', claims, lost_of(m), 1)
  elseif ARGV[4] ~= '1' then
    return {count, holder}
  end
end
redis.call('HSET', claims, m, me)
return {count, other}
