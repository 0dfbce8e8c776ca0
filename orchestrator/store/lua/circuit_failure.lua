-- CIRCUIT_FAILURE: one more consecutive failure of an activity (see worker/circuit.py). At the
-- threshold the circuit opens until now + cooldown and keeps threshold - 1 failures, so after the
-- cool-down one more failure reopens it at once (half-open).
-- KEYS: the circuit hash of one activity. ARGV: now threshold cooldown_ms
-- Returns the open-until time in ms when this failure opened it, else 0.
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local threshold = tonumber(ARGV[2])
if failures < threshold then return 0 end
local open_until = tonumber(ARGV[1]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'failures', threshold - 1, 'open_until', open_until)
redis.call('HINCRBY', KEYS[1], 'opened', 1)
return open_until
