-- COMMIT: one orchestration step's writes, applied iff the history version is still c.ver.
-- KEYS: meta hist inbox tasks wait outbox children (the instance's), ready outbox-index timers
--       activities (its shard's), the status index and name x status index of the status the
--       caller read (c.old_status) and of the status it commits (c.status), then the shard's
--       claims (with their lost counts), its expire index and retention hash, then the queues of c.pushes in order.
-- ARGV: id, blob (msgpack: see RedisStore.commit).
-- Returns {CODE.COMMITTED, version, rerun}, {CODE.CONFLICT, current version, 0} (a stale step,
-- nothing written), {CODE.GONE, 0, 0}, {CODE.DUPLICATE, version, 0} (c.completed is no longer
-- awaited: nothing written), or {CODE.NEEDS_KEYS, status, name} when the status moves but the
-- caller's c.old_status / c.name are not the instance's (nothing written).
local meta, hist, inbox, tasks, wait, outbox, children = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local ready, outbox_index, timers, activities = KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local claims, expire, retention = KEYS[16], KEYS[17], KEYS[18]
local id = ARGV[1]
local c = cmsgpack.unpack(ARGV[2])
local cur = redis.call('HMGET', meta, 'ver', 'status', 'created', 'name', 'parent', 'wtok', 'run', 'gen')
if not cur[1] then return {CODE.GONE, 0, 0} end
local ver = tonumber(cur[1])
if ver ~= c.ver then return {CODE.CONFLICT, ver, 0} end
local completed = c.completed or ''
-- A step decided from a cached replay without reading the store: the version alone could match a
-- newer run's (replaced meanwhile), so its run and generation must match too.
if completed ~= '' and ((cur[7] or '') ~= c.run or tonumber(cur[8] or '0') ~= c.gen) then
  return {CODE.CONFLICT, ver, 0}
end
local moves = cur[2] ~= c.status
if moves and (cur[2] ~= c.old_status or cur[4] ~= c.name) then return {CODE.NEEDS_KEYS, cur[2], cur[4]} end
-- A step decided with an activity result in hand (c.completed: the task key), which skipped the
-- inbox: the result counts iff the task is still awaited, else nothing is written.
if completed ~= '' then
  if redis.call('HDEL', tasks, completed) == 0 then return {CODE.DUPLICATE, ver, 0} end
  redis.call('HDEL', claims, member(id, completed), lost_of(member(id, completed)))
end
for _, xid in ipairs(c.consumed) do redis.call('XDEL', inbox, xid) end
-- An emptied stream still holds a preallocated node; the next delivery recreates it.
local inbox_empty = #c.consumed > 0 and redis.call('XLEN', inbox) == 0
if inbox_empty then redis.call('DEL', inbox) end
-- The step is done: the committing process lets go of its claim (worker/liveness.py), and the
-- step's lost count starts again.
-- (A step with its result in hand claimed nothing: the previous commit ended the last claim.)
local step = member(id, STEP_CLAIM)
if c.claimer and c.claimer ~= '' and redis.call('HGET', claims, step) == c.claimer then
  redis.call('HDEL', claims, step, lost_of(step))
elseif completed == '' then
  redis.call('HDEL', claims, lost_of(step))
end
local finishing = is_terminal(c.status)
local open_tasks = (c.reset or finishing) and redis.call('HKEYS', tasks) or {}
if c.reset or finishing then drop_claims(id, claims, open_tasks) end
if c.reset then
  -- Timers the old generation left pending would fire into the new one's task keys: drop them.
  for _, key in ipairs(open_tasks) do
    redis.call('ZREM', timers, member(id, key))
    redis.call('ZREM', activities, member(id, key))
  end
  redis.call('DEL', hist, tasks)
  redis.call('HINCRBY', meta, 'gen', 1)
end
ver = ver + 1
if c.batch ~= '' then redis.call('XADD', hist, ver .. '-1', 'e', c.batch) end
-- One HSET for the version, the fields and (unless it finishes or keeps its wait) the wait mode,
-- with a wait of one token that token (wtok: prelude.lua's take_token); one HDEL for what goes.
local set = {'ver', ver, 'updated', c.now, 'status', c.status}
for f, v in pairs(c.fields) do set[#set + 1] = f; set[#set + 1] = v end
local new_wait = not c.keep_wait and not finishing
local single = nil  -- the one token awaited from now on, when it is one
if new_wait then
  for _, v in ipairs({'wmode', c.wait_mode, 'wleft', #c.wait}) do set[#set + 1] = v end
  if #c.wait == 1 then
    single = c.wait[1]
    set[#set + 1] = 'wtok'; set[#set + 1] = single
  end
end
redis.call('HSET', meta, unpack(set))
local drop = {}
for _, f in ipairs(c.drop_fields) do drop[#drop + 1] = f end
if finishing then
  for _, f in ipairs({'wmode', 'wleft', 'wtok'}) do drop[#drop + 1] = f end
elseif new_wait and not single and cur[6] then
  drop[#drop + 1] = 'wtok'
end
if #drop > 0 then redis.call('HDEL', meta, unpack(drop)) end
-- Tasks the step stopped waiting for (a timed-out attempt, a disarmed timeout timer): a late
-- delivery for them is then dropped by deliver(), and a pending timer never fires.
for _, key in ipairs(c.drop_tasks or {}) do
  redis.call('HDEL', tasks, key)
  redis.call('ZREM', timers, member(id, key))
  redis.call('ZREM', activities, member(id, key))
end
-- An activity the committing process runs itself (eager) is marked, so that the redelivery of that
-- process's message after a crash can find it and queue it. One HSET for every task key.
local awaited = {}
for _, key in ipairs(c.tasks) do
  if key ~= c.eager then awaited[#awaited + 1] = key; awaited[#awaited + 1] = 1 end
end
if c.eager and c.eager ~= '' then
  awaited[#awaited + 1] = c.eager; awaited[#awaited + 1] = EAGER_MARK
  -- and claimed for that process here, as take_attempts would (it is in no activity index: the
  -- claim brings it back if the process dies, worker/liveness.py)
  if c.taker and c.taker ~= '' then redis.call('HSET', claims, member(id, c.eager), c.taker) end
end
for i = 1, #awaited, 1000 do redis.call('HSET', tasks, unpack(awaited, i, math.min(i + 999, #awaited))) end
-- Activity attempts dispatched by this step: a sweeper publishes one again if it shows no sign of
-- life for a visibility timeout (its message can be lost between a worker's fetch and its ack record).
for _, key in ipairs(c.activities or {}) do redis.call('ZADD', activities, c.now, member(id, key)) end
if #c.outbox > 0 then
  for i = 1, #c.outbox, 2 do redis.call('HSET', outbox, c.outbox[i], c.outbox[i + 1]) end
  redis.call('ZADD', outbox_index, 'NX', c.now, id)
end
-- Task messages for the broker (when it is this Redis): queued iff the step is recorded, in order.
for q, messages in ipairs(c.pushes or {}) do
  local queue = KEYS[18 + q]
  for j = 1, #messages, 500 do redis.call('LPUSH', queue, unpack(messages, j, math.min(j + 499, #messages))) end
end
for i = 1, #c.timers, 2 do redis.call('ZADD', timers, c.timers[i], c.timers[i + 1]) end
for _, child in ipairs(c.children) do redis.call('SADD', children, child) end
-- A continue-as-new's restart and carried-over events go ahead of what arrived during the step, so
-- the new generation reads each event name in the order the events came (per-name FIFO).
local later = {}
if c.reset and #c.inbox_add > 0 then
  later = redis.call('XRANGE', inbox, '-', '+')
  for _, entry in ipairs(later) do redis.call('XDEL', inbox, entry[1]) end
end
for i = 1, #c.inbox_add, 2 do
  redis.call('XADD', inbox, '*', 't', c.inbox_add[i], 'f', '0', 'e', c.inbox_add[i + 1])
end
for _, entry in ipairs(later) do redis.call('XADD', inbox, '*', unpack(entry[2])) end
if moves then reindex(id, {KEYS[12], KEYS[13]}, {KEYS[14], KEYS[15]}, cur[3]) end
if is_terminal(c.status) then
  -- Retention (worker/retention.py purges it then, with its children): per workflow name as set
  -- through the client, else the engine's default (c.retention ms; 0 keeps it).
  if c.retention and not cur[5] then
    local ms = tonumber(redis.call('HGET', retention, cur[4] or c.name) or c.retention)
    if ms > 0 then redis.call('ZADD', expire, c.now + ms, id) else redis.call('ZREM', expire, id) end
  end
  for _, key in ipairs(open_tasks) do
    redis.call('ZREM', timers, member(id, key))
    redis.call('ZREM', activities, member(id, key))
  end
  -- terminated before its scheduled start
  if cur[2] == PENDING then redis.call('ZREM', timers, member(id, START_KEY)) end
  redis.call('DEL', wait, tasks)
  redis.call('ZREM', ready, id)
  return {CODE.COMMITTED, ver, 0}
end
-- A wait set is written only for a wait of several tokens (or none); one of one token is wtok, and
-- while wtok is set no wait set exists, so replacing one such wait by another writes nothing here.
if new_wait and (not single or not cur[6]) then redis.call('DEL', wait) end
if new_wait and not single then
  for i = 1, #c.wait, 500 do
    redis.call('SADD', wait, unpack(c.wait, i, math.min(i + 499, #c.wait)))
  end
end
-- Nothing can have arrived in an inbox this step just emptied (the script runs alone).
local nothing_new = inbox_empty and #c.inbox_add == 0
if not nothing_new then
  local satisfied, any = rescan(meta, inbox, wait, c.status, new_wait and c.wait_mode or nil, single)
  if satisfied then
    redis.call('ZADD', ready, c.now, id)
    return {CODE.COMMITTED, ver, 1}
  end
  -- A step with its result in hand was woken by nobody: with an empty inbox it is in no ready set.
  if completed ~= '' and not any then return {CODE.COMMITTED, ver, 0} end
end
redis.call('ZREM', ready, id)
return {CODE.COMMITTED, ver, 0}
