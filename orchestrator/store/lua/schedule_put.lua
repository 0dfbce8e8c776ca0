-- SCHEDULE_PUT: create a schedule (only if absent) or replace its spec and state (only if present).
-- KEYS: the schedule's hash, the due index, the index of all schedules (keys.py: {schedules} slot).
-- ARGV: id, mode ('create' | 'update'), now, due ('' = not due), blob (msgpack map of the hash's fields).
-- Returns CODE.DONE, CODE.EXISTS (create of a taken id) or CODE.MISSING (update of an unknown id).
local id, mode, now, due = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local exists = redis.call('EXISTS', KEYS[1]) == 1
if mode == 'create' and exists then return CODE.EXISTS end
if mode == 'update' and not exists then return CODE.MISSING end
local fields = cmsgpack.unpack(ARGV[5])
for f, v in pairs(fields) do redis.call('HSET', KEYS[1], f, v) end
redis.call('HINCRBY', KEYS[1], 'rev', 1)
if mode == 'create' then
  redis.call('HSET', KEYS[1], 'created', now)
  redis.call('ZADD', KEYS[3], now, id)
end
if due == '' then redis.call('ZREM', KEYS[2], id) else redis.call('ZADD', KEYS[2], due, id) end
return CODE.DONE
