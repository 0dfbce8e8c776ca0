-- FLOW_PARK: a PENDING instance waits for flow control (a concurrency slot, its rate-limit slot):
-- record why in its metadata and take it off the ready index, unless a control (a terminate)
-- arrived, which must still be applied: then nothing is parked and the caller runs the step.
-- KEYS: meta inbox (the instance's), ready (its shard's). ARGV: id, scope, reason.
-- Returns 1 when parked, 0 when the step must run.
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= PENDING then return 0 end
local controls = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
  if entry[2][2] == CONTROL_TOKEN then controls = controls + 1 end
end
if controls > 1 then return 0 end  -- its ExecutionStarted, and a control since
redis.call('HSET', KEYS[1], 'flow', ARGV[2], 'flow_wait', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
