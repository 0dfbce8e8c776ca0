-- FLOW_DEDUP: claim a workflow start's deduplication id (client.schedule_new_workflow(dedup_id=)).
-- KEYS: the dedup key. ARGV: new instance id, the holder to replace ('' = claim only if free).
-- Returns '' when the id is now the new instance's, else the instance that holds it.
local cur = redis.call('GET', KEYS[1])
if not cur or (ARGV[2] ~= '' and cur == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return ''
end
return cur
