"""Lua scripts: every state change of an instance is one of these, so each is atomic.

Arguments that are lists or maps travel as one msgpack blob (``cmsgpack`` in Redis; packed without the
bin type, which Redis's cmsgpack does not read). Wake-up protocol, shared by every script:

* a delivery (activity result, timer, event, control) is appended to the inbox with its wake token;
* it wakes the instance (adds it to ``ready``) only when the blocked workflow's wait is satisfied:
  any awaited token in ``any`` mode, the last one in ``all`` mode, a failure, or a control event;
* ``ZADD ready NX`` makes exactly one caller responsible for publishing the step (return code 2);
* a commit replaces the wait set and re-checks the inbox events that arrived during the step, so a
  delivery that raced with the step is never stranded.
"""

from __future__ import annotations

from ..core.vocabulary import CONTROL_TOKEN, TERMINAL, WAIT_ALL, Status


def _vocabulary() -> str:
    """The statuses and tokens the scripts compare with, written from ``core.vocabulary``."""
    statuses = "".join(f"local {s.name} = '{s.value}'\n" for s in Status)
    terminal = ", ".join(f"[{Status(s).name}] = true" for s in sorted(TERMINAL))
    return (f"{statuses}local TERMINAL = {{{terminal}}}\n"
            f"local CONTROL_TOKEN = '{CONTROL_TOKEN}'\nlocal WAIT_ALL = '{WAIT_ALL}'\n")


PRELUDE = _vocabulary() + r"""
local function is_terminal(s)
  return TERMINAL[s] == true
end

-- Status indexes: one per status and one per (workflow name, status), so listing by status and name
-- is a range read of one sorted set instead of a filtered walk.
local function reindex(prefix, id, name, old, new, created)
  if old then
    redis.call('ZREM', prefix .. ':idx:status:' .. old, id)
    redis.call('ZREM', prefix .. ':idx:ns:' .. name .. ':' .. old, id)
  end
  if new then
    redis.call('ZADD', prefix .. ':idx:status:' .. new, created, id)
    redis.call('ZADD', prefix .. ':idx:ns:' .. name .. ':' .. new, created, id)
  end
end

-- Drop an instance from every listing index (purge, replace).
local function unindex(prefix, id, name, status)
  reindex(prefix, id, name, status, nil, 0)
  redis.call('ZREM', prefix .. ':idx:all', id)
  local by_name = prefix .. ':idx:name:' .. name
  redis.call('ZREM', by_name, id)
  if redis.call('EXISTS', by_name) == 0 then redis.call('SREM', prefix .. ':idx:names', name) end
end

-- Returns -1 unknown instance, -2 finished, 0 duplicate/late (dropped), 1 stored, 2 stored + wake.
local function deliver(prefix, id, meta, inbox, tasks, wait, task_key, token, packed, now, control, failure)
  local status = redis.call('HGET', meta, 'status')
  if not status then return -1 end
  if is_terminal(status) then return -2 end
  if task_key ~= '' then
    if redis.call('HDEL', tasks, task_key) == 0 then return 0 end
    redis.call('ZREM', prefix .. ':activities', id .. '|' .. task_key)  -- the attempt is accounted for
  end
  redis.call('XADD', inbox, '*', 't', token, 'f', failure, 'e', packed)
  local wake = false
  if control == '1' then
    wake = true
  elseif status ~= SUSPENDED and status ~= PENDING and redis.call('SREM', wait, token) == 1 then
    if failure == '1' or redis.call('HGET', meta, 'wmode') ~= WAIT_ALL then
      wake = true
    elseif redis.call('HINCRBY', meta, 'wleft', -1) <= 0 then
      wake = true
    end
  end
  if wake and redis.call('ZADD', prefix .. ':ready', 'NX', now, id) == 1 then return 2 end
  return 1
end

-- After the wait set was replaced: do inbox events that arrived meanwhile satisfy it?
local function rescan(meta, inbox, wait, status)
  local mode = redis.call('HGET', meta, 'wmode')
  local satisfied = false
  for _, entry in ipairs(redis.call('XRANGE', inbox, '-', '+')) do
    local f = entry[2]
    local token, failure = f[2], f[4]
    if token == CONTROL_TOKEN then
      satisfied = true
    elseif status ~= SUSPENDED and redis.call('SREM', wait, token) == 1 then
      if failure == '1' or mode ~= WAIT_ALL then
        satisfied = true
      elseif redis.call('HINCRBY', meta, 'wleft', -1) <= 0 then
        satisfied = true
      end
    end
  end
  return satisfied
end
"""

# KEYS: meta inbox hist tasks wait outbox children ekeys | ARGV: prefix id blob
CREATE = PRELUDE + r"""
local meta, inbox = KEYS[1], KEYS[2]
local prefix, id = ARGV[1], ARGV[2]
local c = cmsgpack.unpack(ARGV[3])
local status = redis.call('HGET', meta, 'status')
if status then
  local old = redis.call('HMGET', meta, 'name', 'parent', 'parent_run', 'parent_key')
  -- The same call (parent run, generation and sequence) of the same parent: a republished outbox.
  if c.parent ~= '' and old[2] == c.parent and old[3] == c.parent_run and old[4] == c.parent_key then
    return {0, status}
  end
  -- A finished child of an earlier call of the same parent (an earlier generation, a replaced run,
  -- or the same explicit child id called again): the id is the parent's to reuse, so it starts over.
  local stale_child = c.parent ~= '' and old[2] == c.parent and is_terminal(status)
  if not ((c.replace or stale_child) and is_terminal(status)) then return {-1, status} end
  unindex(prefix, id, old[1], status)
  redis.call('DEL', unpack(KEYS))
end
local seed = c.seed
local first = seed and RUNNING or PENDING
redis.call('HSET', meta, 'name', c.name, 'app', c.app, 'status', first, 'input', c.input,
  'created', c.now, 'updated', c.now, 'ver', 0, 'gen', 0)
if c.parent ~= '' then
  redis.call('HSET', meta, 'parent', c.parent, 'parent_key', c.parent_key, 'parent_app', c.parent_app,
    'parent_run', c.parent_run)
end
redis.call('ZADD', prefix .. ':idx:all', c.now, id)
redis.call('ZADD', prefix .. ':idx:name:' .. c.name, c.now, id)
redis.call('SADD', prefix .. ':idx:names', c.name)
reindex(prefix, id, c.name, nil, first, c.now)
if seed then
  -- A rerun (client.rerun_workflow): created already holding the history it takes over (version 1),
  -- its first step's inbox, and the timers it re-arms, in this one write.
  if seed.batch ~= '' then redis.call('XADD', KEYS[3], '1-1', 'e', seed.batch) end
  redis.call('HSET', meta, 'ver', 1)
  for k, v in pairs(seed.fields) do redis.call('HSET', meta, k, v) end
  for _, key in ipairs(seed.tasks) do redis.call('HSET', KEYS[4], key, 1) end
  for i = 1, #seed.timers, 2 do redis.call('ZADD', prefix .. ':timers', seed.timers[i], seed.timers[i + 1]) end
  for _, packed in ipairs(seed.inbox) do redis.call('XADD', inbox, '*', 't', CONTROL_TOKEN, 'f', '0', 'e', packed) end
else
  redis.call('XADD', inbox, '*', 't', CONTROL_TOKEN, 'f', '0', 'e', c.started)
end
if c.start_at > c.now then
  redis.call('ZADD', prefix .. ':timers', c.start_at, id .. '|start')
  return {1, first}
end
if redis.call('ZADD', prefix .. ':ready', 'NX', c.now, id) == 1 then
  -- The first step's message, when the broker is this Redis: queued iff the instance exists.
  if c.push_queue and c.push_queue ~= '' then redis.call('LPUSH', c.push_queue, c.push_message) end
  return {2, first}
end
return {1, first}
"""

# KEYS: meta inbox tasks wait ekeys hist | ARGV: prefix id task_key token packed now control failure
#       idempotency_key load
# An external event raised with an idempotency key the instance has already received is dropped
# (code 0, like a duplicate task result); the key is remembered only when the event was stored.
# With ``load`` ('-' for all history, or a version: only what was committed after it), a delivery
# that wakes the instance also returns what its step reads, {2, meta, history, inbox}, in one atomic
# reply: the deliverer runs that step next, and saves itself the round trip of loading it.
DELIVER = PRELUDE + r"""
local idem = ARGV[9] or ''
if idem ~= '' and redis.call('SISMEMBER', KEYS[5], idem) == 1 then return 0 end
local code = deliver(ARGV[1], ARGV[2], KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[4], ARGV[5],
  tonumber(ARGV[6]), ARGV[7], ARGV[8])
if idem ~= '' and code > 0 then redis.call('SADD', KEYS[5], idem) end
local load = ARGV[10] or ''
if code ~= 2 or load == '' then return code end
local after = load == '-' and '-' or ('(' .. load .. '-1')
return {code, redis.call('HGETALL', KEYS[1]), redis.call('XRANGE', KEYS[6], after, '+'),
  redis.call('XRANGE', KEYS[2], '-', '+')}
"""

# KEYS: meta inbox tasks wait | ARGV: prefix id member task_key token packed now
# Removing the timer from the index and delivering it happen together: many pollers, one firing.
FIRE_TIMER = PRELUDE + r"""
local prefix, id = ARGV[1], ARGV[2]
if redis.call('ZREM', prefix .. ':timers', ARGV[3]) == 0 then return -3 end
if ARGV[4] == '' then
  local status = redis.call('HGET', KEYS[1], 'status')
  if not status or is_terminal(status) then return -2 end
  if redis.call('ZADD', prefix .. ':ready', 'NX', tonumber(ARGV[7]), id) == 1 then return 2 end
  return 1
end
return deliver(prefix, id, KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[4], ARGV[5], ARGV[6],
  tonumber(ARGV[7]), '0', '0')
"""

# KEYS: meta hist inbox tasks wait outbox children | ARGV: prefix id blob
# Returns {1, version, rerun} on success, {0, current version} on a version conflict, {-1} if gone.
COMMIT = PRELUDE + r"""
local meta, hist, inbox, tasks, wait, outbox, children = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local prefix, id = ARGV[1], ARGV[2]
local c = cmsgpack.unpack(ARGV[3])
local cur = redis.call('HMGET', meta, 'ver', 'status', 'created', 'name')
if not cur[1] then return {-1, 0, 0} end
local ver = tonumber(cur[1])
if ver ~= c.ver then return {0, ver, 0} end
for _, xid in ipairs(c.consumed) do redis.call('XDEL', inbox, xid) end
-- An emptied stream still holds a preallocated node; the next delivery recreates it.
if #c.consumed > 0 and redis.call('XLEN', inbox) == 0 then redis.call('DEL', inbox) end
if c.reset then
  -- Timers the old generation left pending would fire into the new one's task keys: drop them.
  for _, key in ipairs(redis.call('HKEYS', tasks)) do
    redis.call('ZREM', prefix .. ':timers', id .. '|' .. key)
    redis.call('ZREM', prefix .. ':activities', id .. '|' .. key)
  end
  redis.call('DEL', hist, tasks)
  redis.call('HINCRBY', meta, 'gen', 1)
end
ver = ver + 1
if c.batch ~= '' then redis.call('XADD', hist, ver .. '-1', 'e', c.batch) end
redis.call('HSET', meta, 'ver', ver, 'updated', c.now, 'status', c.status)
for k, v in pairs(c.fields) do redis.call('HSET', meta, k, v) end
for _, k in ipairs(c.drop_fields) do redis.call('HDEL', meta, k) end
-- Tasks the step stopped waiting for (a timed-out attempt, a disarmed timeout timer): a late
-- delivery for them is then dropped by deliver(), and a pending timer never fires.
for _, key in ipairs(c.drop_tasks or {}) do
  redis.call('HDEL', tasks, key)
  redis.call('ZREM', prefix .. ':timers', id .. '|' .. key)
  redis.call('ZREM', prefix .. ':activities', id .. '|' .. key)
end
for _, key in ipairs(c.tasks) do redis.call('HSET', tasks, key, 1) end
-- An activity the committing process runs itself (eager): marked, so that the redelivery of that
-- process's message after a crash can find it and queue it.
if c.eager and c.eager ~= '' then redis.call('HSET', tasks, c.eager, 'e') end
-- Activity attempts dispatched by this step: a sweeper publishes one again if it shows no sign of
-- life for a visibility timeout (its message can be lost between a worker's fetch and its ack record).
for _, key in ipairs(c.activities or {}) do redis.call('ZADD', prefix .. ':activities', c.now, id .. '|' .. key) end
if #c.outbox > 0 then
  for i = 1, #c.outbox, 2 do redis.call('HSET', outbox, c.outbox[i], c.outbox[i + 1]) end
  redis.call('ZADD', prefix .. ':outbox', 'NX', c.now, id)
end
-- Task messages for the broker (when it is this Redis): queued iff the step is recorded, in order.
local pushes = c.pushes or {}
for i = 1, #pushes, 2 do
  local queue, messages = pushes[i], pushes[i + 1]
  for j = 1, #messages, 500 do redis.call('LPUSH', queue, unpack(messages, j, math.min(j + 499, #messages))) end
end
for i = 1, #c.timers, 2 do redis.call('ZADD', prefix .. ':timers', c.timers[i], c.timers[i + 1]) end
for _, child in ipairs(c.children) do redis.call('SADD', children, child) end
for i = 1, #c.inbox_add, 2 do
  redis.call('XADD', inbox, '*', 't', c.inbox_add[i], 'f', '0', 'e', c.inbox_add[i + 1])
end
if cur[2] ~= c.status then reindex(prefix, id, cur[4], cur[2], c.status, cur[3]) end
if is_terminal(c.status) then
  for _, key in ipairs(redis.call('HKEYS', tasks)) do
    redis.call('ZREM', prefix .. ':timers', id .. '|' .. key)
    redis.call('ZREM', prefix .. ':activities', id .. '|' .. key)
  end
  redis.call('ZREM', prefix .. ':timers', id .. '|start')  -- terminated before its scheduled start
  redis.call('DEL', wait, tasks)
  redis.call('HDEL', meta, 'wmode', 'wleft')
  redis.call('ZREM', prefix .. ':ready', id)
  return {1, ver, 0}
end
if not c.keep_wait then
  redis.call('DEL', wait)
  for i = 1, #c.wait, 500 do
    redis.call('SADD', wait, unpack(c.wait, i, math.min(i + 499, #c.wait)))
  end
  redis.call('HSET', meta, 'wmode', c.wait_mode, 'wleft', #c.wait)
end
if rescan(meta, inbox, wait, c.status) then
  redis.call('ZADD', prefix .. ':ready', c.now, id)
  return {1, ver, 1}
end
redis.call('ZREM', prefix .. ':ready', id)
return {1, ver, 0}
"""

# KEYS: meta inbox | ARGV: prefix id
# A step that found nothing to consume lets go of the instance, unless something arrived since.
RELEASE = PRELUDE + r"""
local prefix, id = ARGV[1], ARGV[2]
local status = redis.call('HGET', KEYS[1], 'status')
if status and not is_terminal(status) then
  if status == SUSPENDED then
    for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
      if entry[2][2] == CONTROL_TOKEN then return 1 end
    end
  elseif redis.call('XLEN', KEYS[2]) > 0 then
    return 1
  end
end
redis.call('ZREM', prefix .. ':ready', id)
return 0
"""

# KEYS: outbox | ARGV: prefix id dispatch_id...
ACK_OUTBOX = r"""
for i = 3, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('ZREM', ARGV[1] .. ':outbox', ARGV[2]) end
return 1
"""

# KEYS: zset | ARGV: cutoff now limit — take entries older than cutoff and re-stamp them, so two
# sweepers running at once do not both pick the same entry.
CLAIM_STALE = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return ids
"""

# KEYS: meta hist inbox tasks wait outbox children | ARGV: prefix id
# Returns {-1} unknown, {-2, status} still running, {-3, status} finished but its last dispatches
# (parent notification, recursive terminate) are not yet published, {1, child ids...} purged.
PURGE = PRELUDE + r"""
local prefix, id = ARGV[1], ARGV[2]
local m = redis.call('HMGET', KEYS[1], 'status', 'name')
if not m[1] then return {-1} end
if not is_terminal(m[1]) then return {-2, m[1]} end
if redis.call('EXISTS', KEYS[6]) == 1 then return {-3, m[1]} end
local kids = redis.call('SMEMBERS', KEYS[7])
unindex(prefix, id, m[2], m[1])
redis.call('ZREM', prefix .. ':timers', id .. '|start')
redis.call('ZREM', prefix .. ':ready', id)
redis.call('ZREM', prefix .. ':outbox', id)
redis.call('DEL', unpack(KEYS))
local out = {1}
for _, k in ipairs(kids) do table.insert(out, k) end
return out
"""

# KEYS: circuit hash of one activity (see worker/circuit.py) | ARGV: now threshold cooldown_ms
# One more consecutive failure; at the threshold the circuit opens until now + cooldown and keeps
# threshold - 1 failures, so after the cool-down one more failure reopens it at once (half-open).
# Returns the open-until time in ms when this failure opened it, else 0.
CIRCUIT_FAILURE = r"""
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local threshold = tonumber(ARGV[2])
if failures < threshold then return 0 end
local open_until = tonumber(ARGV[1]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'failures', threshold - 1, 'open_until', open_until)
redis.call('HINCRBY', KEYS[1], 'opened', 1)
return open_until
"""
