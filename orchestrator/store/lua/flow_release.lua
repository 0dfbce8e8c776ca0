-- FLOW_RELEASE: give back a member's slot (or take it out of the queue), then grant waiting work
-- round-robin between keys, oldest first within a key, while the limits allow.
-- KEYS (keys.py FlowKeys, one slot): held counts ring items waiting queue.
-- ARGV: member ('' = grant only), now, holder ('' = any; else release only if it is that holder's).
-- Returns {released (0/1), member1, work1, member2, work2, ...}: the work granted, for the caller
-- to publish (its slot is held with no holder until it starts).
local held, counts, ring, items, waiting, queue = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local member, now, only = ARGV[1], ARGV[2], ARGV[3]

local function key_of(value)  -- held values are '<holder>|<since>|<key>'
  local first = string.find(value, '|', 1, true)
  local second = string.find(value, '|', first + 1, true)
  return string.sub(value, second + 1)
end

local released = 0
if member ~= '' then
  local h = redis.call('HGET', held, member)
  if h then
    local holder = string.sub(h, 1, string.find(h, '|', 1, true) - 1)
    if only == '' or holder == only then
      local key = key_of(h)
      redis.call('HDEL', held, member)
      redis.call('HDEL', items, member)
      redis.call('HINCRBY', counts, '*', -1)
      if redis.call('HINCRBY', counts, 'k:' .. key, -1) <= 0 then redis.call('HDEL', counts, 'k:' .. key) end
      released = 1
    end
  elseif only == '' then
    local entry = redis.call('HGET', waiting, member)
    if entry then
      redis.call('ZREM', queue, entry)
      redis.call('HDEL', waiting, member)
      redis.call('HDEL', items, member)
      released = 1
    end
  end
end
local global = tonumber(redis.call('HGET', counts, '!global') or '0')
local per_key = tonumber(redis.call('HGET', counts, '!key') or '0')
local out = {released}
local rounds = redis.call('LLEN', ring)
local idle = 0
while idle < rounds do
  local total = tonumber(redis.call('HGET', counts, '*') or '0')
  if global > 0 and total >= global then break end
  local key = redis.call('LPOP', ring)
  if not key then break end
  local head = #key .. ':' .. key .. '|'
  local first = redis.call('ZRANGEBYLEX', queue, '[' .. head, '[' .. head .. '\255', 'LIMIT', 0, 1)[1]
  if not first then
    redis.call('HDEL', counts, 'r:' .. key)
    rounds = rounds - 1
  else
    local mine = tonumber(redis.call('HGET', counts, 'k:' .. key) or '0')
    if per_key == 0 or mine < per_key then
      local granted = string.sub(first, #head + 18)  -- past '<16-digit seq>|'
      redis.call('ZREM', queue, first)
      redis.call('HDEL', waiting, granted)
      redis.call('HSET', held, granted, '|' .. now .. '|' .. key)
      redis.call('HINCRBY', counts, '*', 1)
      redis.call('HINCRBY', counts, 'k:' .. key, 1)
      table.insert(out, granted)
      table.insert(out, redis.call('HGET', items, granted) or '')
      idle = 0
    else
      idle = idle + 1
    end
    redis.call('RPUSH', ring, key)
  end
end
return out
