-- REAP_PROCESS: take a dead worker process's record and claims, once however many sweepers race.
-- KEYS: procs claims lost (global / the shard's), the process's record hash.
-- ARGV: process id, dead_before (a heartbeat older than this is dead), graceful ('1': the process
--       deregistered itself and handed its work back: nothing counts as lost)
-- Returns {} when it is alive (or reaped already), else {record (flat hash), claims, lost counts}:
-- the work it held, which the caller publishes again, and how often each was lost so far.
local procs, claims, lost, record = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local proc, graceful = ARGV[1], ARGV[3] == '1'
local beat = redis.call('ZSCORE', procs, proc)
if not beat or (not graceful and tonumber(beat) >= tonumber(ARGV[2])) then return {} end
redis.call('ZREM', procs, proc)
local rec = redis.call('HGETALL', record)
redis.call('DEL', record)
local mine, counts = {}, {}
local all = redis.call('HGETALL', claims)
for i = 1, #all, 2 do
  if all[i + 1] == proc then
    local m = all[i]
    redis.call('HDEL', claims, m)
    table.insert(mine, m)
    if graceful then
      table.insert(counts, tonumber(redis.call('HGET', lost, m) or '0'))
    else
      table.insert(counts, redis.call('HINCRBY', lost, m, 1))
    end
  end
end
return {rec, mine, counts}
