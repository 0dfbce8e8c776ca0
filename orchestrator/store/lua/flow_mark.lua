-- FLOW_MARK: set (or, given '', remove) flow-control fields of an existing instance's metadata.
-- KEYS: meta. ARGV: field, value, field, value, ... Returns 1, or 0 when the instance is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
