-- DELIVER: an event for an instance (activity or child result, external event, control) into its
-- inbox, waking it when its wait is satisfied (see prelude.lua's deliver()).
-- KEYS: meta inbox tasks wait ekeys hist (the instance's), activities ready (its shard's).
-- ARGV: id task_key token packed now control failure idempotency_key load
-- An external event raised with an idempotency key the instance has already received is dropped
-- (CODE.DUPLICATE, like a duplicate task result); the key is remembered only when the event was
-- stored. With ``load`` ('-' for all history, or a version: only what was committed after it), a
-- delivery that wakes the instance also returns what its step reads, {CODE.WAKE, meta, history,
-- inbox}, in one atomic reply: the deliverer runs that step next, and saves itself the round trip.
local idem = ARGV[8] or ''
if idem ~= '' and redis.call('SISMEMBER', KEYS[5], idem) == 1 then return CODE.DUPLICATE end
local k = {meta = KEYS[1], inbox = KEYS[2], tasks = KEYS[3], wait = KEYS[4], activities = KEYS[7], ready = KEYS[8]}
local code = deliver(ARGV[1], k, ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7])
if idem ~= '' and code > 0 then redis.call('SADD', KEYS[5], idem) end
local load = ARGV[9] or ''
if code ~= CODE.WAKE or load == '' then return code end
local after = load == '-' and '-' or ('(' .. load .. '-1')
return {code, redis.call('HGETALL', KEYS[1]), redis.call('XRANGE', KEYS[6], after, '+'),
  redis.call('XRANGE', KEYS[2], '-', '+')}
