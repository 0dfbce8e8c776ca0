-- SCHEDULE_ADVANCE: write a tick's new state iff the schedule is still at the revision it was read at.
-- KEYS: the schedule's hash, the due index. ARGV: id, expected rev, due ('' = not due), blob (msgpack
-- map of the state fields). Returns CODE.DONE, CODE.CONFLICT (another pool ticked it first: nothing
-- written) or CODE.MISSING (deleted meanwhile).
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then return CODE.MISSING end
if rev ~= ARGV[2] then return CODE.CONFLICT end
local fields = cmsgpack.unpack(ARGV[4])
for f, v in pairs(fields) do redis.call('HSET', KEYS[1], f, v) end
redis.call('HINCRBY', KEYS[1], 'rev', 1)
if ARGV[3] == '' then redis.call('ZREM', KEYS[2], ARGV[1]) else redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1]) end
return CODE.DONE
