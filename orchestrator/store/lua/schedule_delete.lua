-- SCHEDULE_DELETE: remove a schedule and its index entries (its runs are instances of their own).
-- KEYS: the schedule's hash, the due index, the index of all schedules. ARGV: id.
-- Returns CODE.DONE or CODE.MISSING.
if redis.call('DEL', KEYS[1]) == 0 then return CODE.MISSING end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return CODE.DONE
