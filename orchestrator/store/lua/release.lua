-- RELEASE: a step that found nothing to consume lets go of the instance, unless something arrived since.
-- KEYS: meta inbox (the instance's), ready claims (its shard's). ARGV: id, the releasing process
-- (its step claim is dropped with the release; '' for none)
-- Returns CODE.AGAIN (run another step) or CODE.RELEASED.
local status = redis.call('HGET', KEYS[1], 'status')
if status and not is_terminal(status) then
  if status == SUSPENDED then
    for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
      if entry[2][2] == CONTROL_TOKEN then return CODE.AGAIN end
    end
  elseif redis.call('XLEN', KEYS[2]) > 0 then
    return CODE.AGAIN
  end
end
redis.call('ZREM', KEYS[3], ARGV[1])
local me = ARGV[2] or ''
if me ~= '' and redis.call('HGET', KEYS[4], member(ARGV[1], STEP_CLAIM)) == me then
  redis.call('HDEL', KEYS[4], member(ARGV[1], STEP_CLAIM))
end
return CODE.RELEASED
