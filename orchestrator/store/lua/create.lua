-- CREATE: a new instance (a start, a child's start, a rerun), atomically with its indexes, its first
-- inbox event and, when the broker is this Redis, its first step's message.
-- KEYS: the instance's own keys (meta hist inbox tasks wait outbox children ekeys), its shard's
--       ready timers idx:all idx:names, the name index / status index / name x status index of the
--       new instance (name, first status), the same three of the instance it replaces (name, status
--       of c.old_name / c.old_status; placeholders when none is expected), and the step's queue when
--       c.push_message is set.
-- ARGV: id, blob (msgpack: see RedisStore.create_instance).
-- Returns {CODE.DUE | CODE.CREATED, status}, {CODE.SAME_CALL | CODE.TAKEN, status of the existing
-- instance}, or {CODE.NEEDS_KEYS, status, name}: an instance to replace whose keys were not given
-- (nothing written; the caller asks again with them).
local meta, hist, inbox, tasks = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ready, timers, index_all, index_names = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local id = ARGV[1]
local c = cmsgpack.unpack(ARGV[2])
local status = redis.call('HGET', meta, 'status')
if status then
  local old = redis.call('HMGET', meta, 'name', 'parent', 'parent_run', 'parent_key')
  -- The same call (parent run, generation and sequence) of the same parent: a republished outbox.
  if c.parent ~= '' and old[2] == c.parent and old[3] == c.parent_run and old[4] == c.parent_key then
    return {CODE.SAME_CALL, status}
  end
  -- A finished child of an earlier call of the same parent (an earlier generation, a replaced run,
  -- or the same explicit child id called again): the id is the parent's to reuse, so it starts over.
  local stale_child = c.parent ~= '' and old[2] == c.parent and is_terminal(status)
  if not ((c.replace or stale_child) and is_terminal(status)) then return {CODE.TAKEN, status} end
  if old[1] ~= c.old_name or status ~= c.old_status then return {CODE.NEEDS_KEYS, status, old[1]} end
  unindex(id, old[1], {index_all, index_names, KEYS[16], KEYS[17], KEYS[18]})
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
end
local seed = c.seed
local first = seed and RUNNING or PENDING
redis.call('HSET', meta, 'name', c.name, 'app', c.app, 'status', first, 'input', c.input,
  'created', c.now, 'updated', c.now, 'ver', 0, 'gen', 0, 'run', c.run)
if c.prio and c.prio ~= '' then redis.call('HSET', meta, 'prio', c.prio) end  -- its priority (core/flow.py)
if c.parent ~= '' then
  redis.call('HSET', meta, 'parent', c.parent, 'parent_key', c.parent_key, 'parent_app', c.parent_app,
    'parent_run', c.parent_run)
end
redis.call('ZADD', index_all, c.now, id)
redis.call('ZADD', KEYS[13], c.now, id)
redis.call('SADD', index_names, c.name)
reindex(id, nil, {KEYS[14], KEYS[15]}, c.now)
if seed then
  -- A rerun (client.rerun_workflow): created already holding the history it takes over (version 1),
  -- its first step's inbox, and the timers it re-arms, in this one write.
  if seed.batch ~= '' then redis.call('XADD', hist, '1-1', 'e', seed.batch) end
  redis.call('HSET', meta, 'ver', 1)
  for f, v in pairs(seed.fields) do redis.call('HSET', meta, f, v) end
  for _, key in ipairs(seed.tasks) do redis.call('HSET', tasks, key, 1) end
  for i = 1, #seed.timers, 2 do redis.call('ZADD', timers, seed.timers[i], seed.timers[i + 1]) end
  for _, packed in ipairs(seed.inbox) do redis.call('XADD', inbox, '*', 't', CONTROL_TOKEN, 'f', '0', 'e', packed) end
else
  redis.call('XADD', inbox, '*', 't', CONTROL_TOKEN, 'f', '0', 'e', c.started)
end
if c.start_at > c.now then
  redis.call('ZADD', timers, c.start_at, member(id, START_KEY))
  return {CODE.CREATED, first}
end
if redis.call('ZADD', ready, 'NX', c.now, id) == 1 then
  -- The first step's message, when the broker is this Redis: queued iff the instance exists.
  if c.push_message and c.push_message ~= '' then redis.call('LPUSH', KEYS[19], c.push_message) end
  return {CODE.DUE, first}
end
return {CODE.CREATED, first}
