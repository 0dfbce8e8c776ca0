-- FLOW_PARK: an instance that has not started (PENDING, or SUSPENDED before its first step) waits for flow control (a concurrency slot, its rate-limit slot):
-- record why in its metadata and take it off the ready index, unless a control arrived since the
-- caller read the inbox (it may be a terminate, which must be applied now): then nothing is parked
-- and the caller runs the step. Suspend and resume the caller saw wait with the instance.
-- KEYS: meta inbox (the instance's), ready (its shard's). ARGV: id, scope, reason, the number of
-- control entries the caller saw in the inbox (its ExecutionStarted and any suspend / resume).
-- Returns 1 when parked, 0 when the step must run.
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= PENDING and status ~= SUSPENDED then return 0 end  -- suspended before its first step
local controls = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
  if entry[2][2] == CONTROL_TOKEN then controls = controls + 1 end
end
if controls > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'flow', ARGV[2], 'flow_wait', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
