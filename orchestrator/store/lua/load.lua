-- LOAD: what a step reads, in one atomic read (one command, where MULTI HGETALL XRANGE XRANGE EXEC
-- were five; and a Redis Cluster MULTI would hand XRANGE back unparsed).
-- KEYS: meta hist inbox (the instance's). ARGV: after ('-' for all history, or a version: only what
-- was committed after it).
-- Returns {} for no such instance, else {meta as a flat list, history entries, inbox entries}.
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return {} end
local after = ARGV[1] == '-' and '-' or ('(' .. ARGV[1] .. '-1')
return {meta, redis.call('XRANGE', KEYS[2], after, '+'), redis.call('XRANGE', KEYS[3], '-', '+')}
