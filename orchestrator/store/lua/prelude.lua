-- Shared by the instance scripts (create, deliver, fire_timer, commit, release, purge). The loader
-- (store/scripts.py) puts before it the vocabulary (statuses, TERMINAL, tokens) and the script's own
-- result codes (CODE.*). No key is built here: every key arrives in KEYS, in the order keys.py gives.

local function is_terminal(s)
  return TERMINAL[s] == true
end

local function member(id, key)
  return id .. MEMBER_SEPARATOR .. key
end

-- Status indexes: one per status and one per (workflow name, status), so listing by status and name
-- is a range read of one sorted set instead of a filtered walk. ``old`` / ``new`` are
-- {status index, name x status index} of the status left / entered, or nil.
local function reindex(id, old, new, created)
  if old then
    redis.call('ZREM', old[1], id)
    redis.call('ZREM', old[2], id)
  end
  if new then
    redis.call('ZADD', new[1], created, id)
    redis.call('ZADD', new[2], created, id)
  end
end

-- Drop an instance from every listing index (purge, replace). ``idx`` = {all, names, name index,
-- status index, name x status index} of the instance's name and status.
local function unindex(id, name, idx)
  reindex(id, {idx[4], idx[5]}, nil, 0)
  redis.call('ZREM', idx[1], id)
  redis.call('ZREM', idx[3], id)
  if redis.call('EXISTS', idx[3]) == 0 then redis.call('SREM', idx[2], name) end
end

-- The claims hash's field counting how often the work of claim ``m`` was lost (its process died).
local function lost_of(m) return m .. LOST_SUFFIX end

-- Take ``token`` off the blocked workflow's wait; true when it was awaited. A wait of one token is
-- the meta field ``wtok`` (``single``: its value, '' once taken; the wait set is then absent), a
-- wider one the wait set.
local function take_token(meta, wait, single, token)
  if single then
    if single == '' or single ~= token then return false end
    redis.call('HSET', meta, 'wtok', '')
    return true
  end
  return redis.call('SREM', wait, token) == 1
end

-- Put a delivery in the inbox and wake the instance when the blocked workflow's wait is satisfied.
-- ``k`` = {meta, inbox, tasks, wait, activities, ready, claims}. Returns a DELIVERED code.
local function deliver(id, k, task_key, token, packed, now, control, failure)
  local m = redis.call('HMGET', k.meta, 'status', 'wmode', 'wtok')  -- one read for all
  local status, wmode = m[1], m[2]
  if not status then return DELIVERED.UNKNOWN end
  if is_terminal(status) then return DELIVERED.FINISHED end
  if task_key ~= '' then
    if redis.call('HDEL', k.tasks, task_key) == 0 then return DELIVERED.DUPLICATE end
    redis.call('ZREM', k.activities, member(id, task_key))  -- the attempt is accounted for
    if k.claims then  -- and nobody runs it any more, nor counts its losses
      local m = member(id, task_key)
      redis.call('HDEL', k.claims, m, lost_of(m))
    end
  end
  redis.call('XADD', k.inbox, '*', 't', token, 'f', failure, 'e', packed)
  local wake = false
  if control == '1' then
    wake = true
  elseif status ~= SUSPENDED and status ~= PENDING and take_token(k.meta, k.wait, m[3], token) then
    if failure == '1' or wmode ~= WAIT_ALL then
      wake = true
    elseif redis.call('HINCRBY', k.meta, 'wleft', -1) <= 0 then
      wake = true
    end
  end
  if wake and redis.call('ZADD', k.ready, 'NX', now, id) == 1 then return DELIVERED.WAKE end
  return DELIVERED.STORED
end

-- After the wait was replaced: do inbox events that arrived meanwhile satisfy it? ``mode``: the wait
-- mode, ``single``: the one awaited token (take_token), each when the caller knows it (it just wrote
-- it), else nil (read here). Returns whether it is satisfied, and whether the inbox held anything.
local function rescan(meta, inbox, wait, status, mode, single)
  if not mode then
    local m = redis.call('HMGET', meta, 'wmode', 'wtok')
    mode, single = m[1], m[2]
  end
  local satisfied = false
  local entries = redis.call('XRANGE', inbox, '-', '+')
  for _, entry in ipairs(entries) do
    local f = entry[2]
    local token, failure = f[2], f[4]
    if token == CONTROL_TOKEN then
      satisfied = true
    elseif status ~= SUSPENDED and take_token(meta, wait, single, token) then
      if single then single = '' end
      if failure == '1' or mode ~= WAIT_ALL then
        satisfied = true
      elseif redis.call('HINCRBY', meta, 'wleft', -1) <= 0 then
        satisfied = true
      end
    end
  end
  return satisfied, #entries > 0
end

-- A finished instance's claims and lost counts: its step's and every outstanding task's.
local function drop_claims(id, claims, keys)
  local step = member(id, STEP_CLAIM)
  local fields = {step, lost_of(step)}
  for _, key in ipairs(keys) do
    local m = member(id, key)
    fields[#fields + 1] = m; fields[#fields + 1] = lost_of(m)
  end
  for i = 1, #fields, 1000 do redis.call('HDEL', claims, unpack(fields, i, math.min(i + 999, #fields))) end
end
