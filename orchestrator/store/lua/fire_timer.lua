-- FIRE_TIMER: fire one timer index entry at most once. Removing it from the index and delivering
-- it happen together, so many pollers are safe: one of them fires it.
-- KEYS: meta inbox tasks wait (the instance's), timers activities ready claims (its shard's).
-- ARGV: id member task_key token packed now (task_key '' for a scheduled start).
local id = ARGV[1]
if redis.call('ZREM', KEYS[5], ARGV[2]) == 0 then return CODE.ALREADY_FIRED end
local now = tonumber(ARGV[6])
if ARGV[3] == '' then
  local status = redis.call('HGET', KEYS[1], 'status')
  if not status or is_terminal(status) then return CODE.FINISHED end
  if redis.call('ZADD', KEYS[7], 'NX', now, id) == 1 then return CODE.WAKE end
  return CODE.STORED
end
local k = {meta = KEYS[1], inbox = KEYS[2], tasks = KEYS[3], wait = KEYS[4], activities = KEYS[6], ready = KEYS[7],
  claims = KEYS[8]}
return deliver(id, k, ARGV[3], ARGV[4], ARGV[5], now, '0', '0')
