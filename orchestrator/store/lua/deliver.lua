-- DELIVER: an event for an instance (activity or child result, external event, control) into its
-- inbox, waking it when its wait is satisfied (see prelude.lua's deliver()).
-- KEYS: meta inbox tasks wait ekeys hist (the instance's), activities ready claims (its shard's).
-- ARGV: id task_key token packed now control failure idempotency_key load fingerprint
-- An external event raised with an idempotency key the instance has already received is dropped
-- (CODE.DUPLICATE, like a duplicate task result) when it is the same event (its fingerprint: the
-- event's matched name), and refused (CODE.KEY_REUSED, nothing stored) when the key came with another.
-- The key is remembered (ekeys: key -> fingerprint) only when the event was stored; an ekeys set
-- written before fingerprints (keys only) becomes a hash whose old keys match any event. With ``load`` ('-' for all history, or a version: only what was committed after it), a
-- delivery that wakes the instance also returns what its step reads, {CODE.WAKE, meta, history,
-- inbox}, in one atomic reply: the deliverer runs that step next, and saves itself the round trip.
local idem, fingerprint = ARGV[8] or '', ARGV[10] or ''
if idem ~= '' then
  if redis.call('TYPE', KEYS[5]).ok == 'set' then
    local old = redis.call('SMEMBERS', KEYS[5])
    redis.call('DEL', KEYS[5])
    for _, key in ipairs(old) do redis.call('HSET', KEYS[5], key, '') end
  end
  local seen = redis.call('HGET', KEYS[5], idem)
  if seen then
    if seen == '' or seen == fingerprint then return CODE.DUPLICATE end
    return CODE.KEY_REUSED
  end
end
local k = {meta = KEYS[1], inbox = KEYS[2], tasks = KEYS[3], wait = KEYS[4], activities = KEYS[7], ready = KEYS[8],
  claims = KEYS[9]}
local code = deliver(ARGV[1], k, ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7])
if idem ~= '' and code > 0 then redis.call('HSET', KEYS[5], idem, fingerprint) end
local load = ARGV[9] or ''
if code ~= CODE.WAKE or load == '' then return code end
local after = load == '-' and '-' or ('(' .. load .. '-1')
return {code, redis.call('HGETALL', KEYS[1]), redis.call('XRANGE', KEYS[6], after, '+'),
  redis.call('XRANGE', KEYS[2], '-', '+')}
