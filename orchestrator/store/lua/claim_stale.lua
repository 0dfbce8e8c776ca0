-- CLAIM_STALE: take entries older than cutoff and re-stamp them, so two sweepers running at once do
-- not both pick the same entry.
-- KEYS: a sorted set (ready, outbox index or activities). ARGV: cutoff now limit
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return ids
