-- REAP_PROCESS: take a dead worker process's claims in one shard, once however many sweepers race
-- (the store reaps every shard, then the process's global record: store/liveness.py).
-- KEYS: procs claims (the shard's: its copy of the heartbeats, its claims and their lost counts).
-- ARGV: process id, dead_before (a heartbeat older than this is dead), graceful ('1': the process
--       deregistered itself and handed its work back: nothing counts as lost)
-- Returns {} when it is alive (or this shard was reaped already), else {claims, lost counts}: the
-- work it held, which the caller publishes again, and how often each was lost so far.
local procs, claims = KEYS[1], KEYS[2]
local proc, graceful = ARGV[1], ARGV[3] == '1'
local beat = redis.call('ZSCORE', procs, proc)
if not beat or (not graceful and tonumber(beat) >= tonumber(ARGV[2])) then return {} end
redis.call('ZREM', procs, proc)
local mine, counts = {}, {}
local all = redis.call('HGETALL', claims)
for i = 1, #all, 2 do
  if all[i + 1] == proc then
    local m = all[i]
    redis.call('HDEL', claims, m)
    table.insert(mine, m)
    if graceful then
      table.insert(counts, tonumber(redis.call('HGET', claims, lost_of(m)) or '0'))
    else
      table.insert(counts, redis.call('HINCRBY', claims, lost_of(m), 1))
    end
  end
end
return {mine, counts}
