-- TAKE_ATTEMPTS: a process takes activity attempts to run, claiming each atomically with the check
-- that it is still awaited (worker/liveness.py has the model).
-- KEYS: procs claims activities (the shard's; procs is its copy of the heartbeats), then the
--       tasks hash of each attempt (all of the shard).
-- ARGV: me now alive_since lost_limit, then (instance id, task key) per attempt.
-- Returns {codes, holders}: per attempt CODE.TAKEN, CODE.NOT_AWAITED, CODE.BUSY (claimed by a live
-- process: its holder in holders) or CODE.LOST_LIMIT (its processes died holding it more than
-- lost_limit times: the caller, now holding it, fails the attempt instead of running it).
local procs, claims, activities = KEYS[1], KEYS[2], KEYS[3]
local me, now, alive_since, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local codes, holders = {}, {}
for i = 1, (#ARGV - 4) / 2 do
  local id, key = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local m = member(id, key)
  local code = CODE.TAKEN
  if redis.call('HEXISTS', KEYS[3 + i], key) == 0 then
    code = CODE.NOT_AWAITED
  else
    local holder = redis.call('HGET', claims, m)
    -- Lost so far: counted by the reaper, or here when the holder died and nobody reaped it yet.
    local count = tonumber(redis.call('HGET', claims, lost_of(m)) or '0')
    if holder and holder ~= me then
      local beat = redis.call('ZSCORE', procs, holder)
      if beat and tonumber(beat) >= alive_since then
        code = CODE.BUSY
        holders[i] = holder
      else
        count = redis.call('HINCRBY', claims, lost_of(m), 1)
      end
    end
    if code ~= CODE.BUSY and count > limit then code = CODE.LOST_LIMIT end
    if code ~= CODE.BUSY then
      redis.call('HSET', claims, m, me)
      redis.call('ZADD', activities, 'XX', now, m)
    end
  end
  codes[i] = code
  holders[i] = holders[i] or ''
end
return {codes, holders}
