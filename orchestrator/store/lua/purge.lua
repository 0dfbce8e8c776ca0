-- PURGE: delete every key of a finished instance and take it out of every index.
-- KEYS: the instance's own keys (meta hist inbox tasks wait outbox children ekeys), its shard's
--       ready outbox-index timers idx:all idx:names, and the name index / status index / name x
--       status index of the caller's ARGV[2] (status) and ARGV[3] (name), the shard's expire index.
-- ARGV: id status name
-- Returns {CODE.UNKNOWN}, {CODE.RUNNING, status}, {CODE.PUBLISHING, status} (finished, but its last
-- dispatches, parent notification or recursive terminate, are not yet published), {CODE.NEEDS_KEYS,
-- status, name} (nothing written; ask again with these), or {CODE.PURGED, child ids...}.
local id = ARGV[1]
local m = redis.call('HMGET', KEYS[1], 'status', 'name')
if not m[1] then return {CODE.UNKNOWN} end
if not is_terminal(m[1]) then return {CODE.RUNNING, m[1]} end
if redis.call('EXISTS', KEYS[6]) == 1 then return {CODE.PUBLISHING, m[1]} end
if m[1] ~= ARGV[2] or m[2] ~= ARGV[3] then return {CODE.NEEDS_KEYS, m[1], m[2]} end
local kids = redis.call('SMEMBERS', KEYS[7])
unindex(id, m[2], {KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16]})
redis.call('ZREM', KEYS[11], member(id, START_KEY))
redis.call('ZREM', KEYS[9], id)
redis.call('ZREM', KEYS[10], id)
redis.call('ZREM', KEYS[17], id)  -- its retention entry
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
local out = {CODE.PURGED}
for _, k in ipairs(kids) do table.insert(out, k) end
return out
