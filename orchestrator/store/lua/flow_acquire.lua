-- FLOW_ACQUIRE: take a concurrency slot of one limited scope, or queue for one (core/flow.py).
-- KEYS (keys.py FlowKeys, one slot): held counts ring items waiting queue.
-- ARGV: member, key, holder (process id), now, global limit (0 = none), per-key limit (0 = none),
--       packed work (published again when a slot is granted later).
-- Returns {CODE.GRANTED} (the caller runs it now), {CODE.QUEUED} (it waits; a release grants it)
-- or {CODE.HELD, holder}: another process holds this member's slot (the caller asks liveness).
-- A member that already holds a slot is granted again: it takes the slot over when it was granted
-- while queued (no holder yet) or is this holder's; a copy of an attempt another process holds
-- (running, or dead and not yet reaped) leaves the holder as it is (liveness decides which copy runs).
local held, counts, ring, items, waiting, queue = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local member, key, holder, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local global, per_key = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('HSET', counts, '!global', global, '!key', per_key)  -- for releases, which have no policy
local current = redis.call('HGET', held, member)
if current then
  local was = string.sub(current, 1, string.find(current, '|', 1, true) - 1)
  if was == '' or was == holder then
    redis.call('HSET', held, member, holder .. '|' .. now .. '|' .. key)
    return {CODE.GRANTED}
  end
  return {CODE.HELD, was}
end
if redis.call('HEXISTS', waiting, member) == 1 then
  redis.call('HSET', items, member, ARGV[7])
  return {CODE.QUEUED}
end
local head = #key .. ':' .. key .. '|'
local total = tonumber(redis.call('HGET', counts, '*') or '0')
local mine = tonumber(redis.call('HGET', counts, 'k:' .. key) or '0')
local queued_here = #redis.call('ZRANGEBYLEX', queue, '[' .. head, '[' .. head .. '\255', 'LIMIT', 0, 1) > 0
if (global == 0 or total < global) and (per_key == 0 or mine < per_key) and not queued_here then
  redis.call('HSET', held, member, holder .. '|' .. now .. '|' .. key)
  redis.call('HINCRBY', counts, '*', 1)
  redis.call('HINCRBY', counts, 'k:' .. key, 1)
  return {CODE.GRANTED}
end
local seq = redis.call('HINCRBY', counts, '!seq', 1)
local entry = head .. string.format('%016d', seq) .. '|' .. member
redis.call('ZADD', queue, 0, entry)
redis.call('HSET', waiting, member, entry)
redis.call('HSET', items, member, ARGV[7])
if redis.call('HSETNX', counts, 'r:' .. key, 1) == 1 then redis.call('RPUSH', ring, key) end
return {CODE.QUEUED}
