-- POP_DUE: take the entries of a sorted set due by now (score <= now), removing them, so that of
-- several sweepers exactly one handles each.
-- KEYS: the sorted set (a shard's deadlines). ARGV: now limit
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due, 500 do redis.call('ZREM', KEYS[1], unpack(due, i, math.min(i + 499, #due))) end
return due
