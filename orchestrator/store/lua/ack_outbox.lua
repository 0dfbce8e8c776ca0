-- ACK_OUTBOX: dispatches published; the instance leaves the outbox index once none is left.
-- KEYS: outbox (the instance's), outbox index (its shard's). ARGV: id dispatch_id...
for i = 2, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 1
