-- FLOW_RATE: reserve one start in a token bucket shared by every pool (core/flow.py rate limits).
-- KEYS: the scope's rate hash. ARGV: key, now, rate (starts per period), period (ms).
-- The bucket holds at most `rate` tokens, refilled at rate/period; a start takes one. When none is
-- left the start is still reserved, at the moment its token will exist (the bucket goes negative),
-- so waiting work starts in order and never more than `rate` per period.
-- Returns the time (ms) the start may happen: now when a token was there.
local tokens_field, at_field = ARGV[1] .. ':t', ARGV[1] .. ':at'
local now, rate, period = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens = tonumber(redis.call('HGET', KEYS[1], tokens_field) or rate)
local at = tonumber(redis.call('HGET', KEYS[1], at_field) or now)
if now > at then
  tokens = math.min(rate, tokens + (now - at) * rate / period)
  at = now
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], tokens_field, tokens, at_field, at)
if tokens >= 0 then return now end
return at + math.ceil(-tokens * period / rate)
