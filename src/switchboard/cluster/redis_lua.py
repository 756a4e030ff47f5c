"""The Lua scripts of the Redis shared state (each runs atomically on the server).

Times come from the server's ``TIME``, never from the nodes' clocks, so nodes whose clocks
disagree still agree on who is alive. Keys a script derives from stored data (an entry's old
node, a dead node's calls) are built from the ``prefix`` argument; they share the prefix's
hash tag, so they live on the same shard as the declared keys.
"""

from __future__ import annotations

__all__ = [
    "ACQUIRE",
    "CLAIM",
    "COUNT",
    "HEARTBEAT",
    "NODES",
    "REGISTER",
    "RELEASE_CLAIM",
    "REMOVE",
    "SET_ONCE",
    "SET_STATE",
    "SWEEP",
]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# A node's slot member is "node|call"; it counts only while the node's heartbeat holds.
_PRUNE = """
local function prune(nodes, slots, now)
  for _, member in ipairs(redis.call('ZRANGE', slots, 0, -1)) do
    local node = string.match(member, '^([^|]*)|')
    local expiry = node and redis.call('ZSCORE', nodes, node)
    if (not expiry) or tonumber(expiry) < now then redis.call('ZREM', slots, member) end
  end
end
"""

# KEYS: claim. ARGV: token ("node uuid"), ttl ms. Retried with the same token → still ours.
CLAIM = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then return 1 end
if held then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: claim. ARGV: "node " — only a claim of this node is dropped.
RELEASE_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
"""

_UNLINK_OLD = """
local function unlink_old(call_key, call_id, prefix)
  local old = redis.call('HMGET', call_key, 'node_id', 'carrier', 'carrier_call_id')
  if old[1] then redis.call('SREM', prefix .. 'node-calls:' .. old[1], call_id) end
  if old[2] and old[3] then
    local carrier_key = prefix .. 'carrier:' .. old[2] .. ':' .. old[3]
    if redis.call('GET', carrier_key) == call_id then redis.call('DEL', carrier_key) end
  end
end
"""

# KEYS: call hash, calls set, node-calls set, carrier key. ARGV: call id, prefix, fields...
REGISTER = (
    _UNLINK_OLD
    + """
unlink_old(KEYS[1], ARGV[1], ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('PERSIST', KEYS[3])
redis.call('SET', KEYS[4], ARGV[1])
return 1
"""
)

# KEYS: call hash. ARGV: state, prefix. A state set on a lost call makes it permanent again.
SET_STATE = """
local fields = redis.call('HMGET', KEYS[1], 'carrier', 'carrier_call_id')
if not fields[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', ARGV[2] .. 'carrier:' .. fields[1] .. ':' .. (fields[2] or ''))
return 1
"""

# KEYS: call hash, calls set. ARGV: call id, prefix, node ("": any). An entry naming another
# node than ARGV[3] stays (registered by that node since).
REMOVE = (
    _UNLINK_OLD
    + """
if ARGV[3] ~= '' then
  local node = redis.call('HGET', KEYS[1], 'node_id')
  if node and node ~= ARGV[3] then return 0 end
end
unlink_old(KEYS[1], ARGV[1], ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""
)

# KEYS: nodes zset. ARGV: node, ttl ms. Returns 1 when the node was not alive before.
HEARTBEAT = (
    _NOW
    + """
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if (not old) or tonumber(old) < now then return 1 end
return 0
"""
)

# KEYS: nodes zset. Returns {now, node, expiry, node, expiry...} for the live nodes.
NODES = (
    _NOW
    + """
local reply = {tostring(now)}
for _, item in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf', 'WITHSCORES')) do
  table.insert(reply, item)
end
return reply
"""
)

# KEYS: nodes zset. ARGV: prefix, retention ms. Marks the calls of dead nodes lost.
SWEEP = (
    _NOW
    + """
local marked = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
  local node_calls = ARGV[1] .. 'node-calls:' .. node
  for _, call_id in ipairs(redis.call('SMEMBERS', node_calls)) do
    local call_key = ARGV[1] .. 'call:' .. call_id
    local f = redis.call('HMGET', call_key, 'node_id', 'state', 'carrier', 'carrier_call_id')
    if f[1] == node and f[2] ~= 'lost' then
      redis.call('HSET', call_key, 'state', 'lost')
      redis.call('PEXPIRE', call_key, ARGV[2])
      redis.call('PEXPIRE', ARGV[1] .. 'carrier:' .. f[3] .. ':' .. f[4], ARGV[2])
      table.insert(marked, call_id)
    end
  end
  redis.call('PEXPIRE', node_calls, ARGV[2])  -- still listed by node while retained
  redis.call('ZREM', KEYS[1], node)
end
return marked
"""
)

# KEYS: nodes zset, slot zsets... ARGV: member, limits... Returns 0 (granted) or the index
# (1-based) of the first full scope. All or nothing. A call counts once per scope: the slot
# another node holds for the same call (a call being adopted) becomes this node's in the same
# step, so the slot is never free between the two nodes for another call to take.
ACQUIRE = (
    _NOW
    + _PRUNE
    + """
local call = string.match(ARGV[1], '^[^|]*|(.*)$')
local function others(key)
  local found = {}
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if member ~= ARGV[1] and string.match(member, '^[^|]*|(.*)$') == call then
      table.insert(found, member)
    end
  end
  return found
end
for i = 2, #KEYS do prune(KEYS[1], KEYS[i], now) end
for i = 2, #KEYS do
  if (not redis.call('ZSCORE', KEYS[i], ARGV[1])) and #others(KEYS[i]) == 0
     and redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[i]) then
    return i - 1
  end
end
for i = 2, #KEYS do
  for _, member in ipairs(others(KEYS[i])) do redis.call('ZREM', KEYS[i], member) end
  redis.call('ZADD', KEYS[i], 'NX', now, ARGV[1])
end
return 0
"""
)

# KEYS: nodes zset, slot zset. Returns the number of live slots.
COUNT = (
    _NOW
    + _PRUNE
    + """
prune(KEYS[1], KEYS[2], now)
return redis.call('ZCARD', KEYS[2])
"""
)

# KEYS: key. ARGV: proposal. The first proposal stays (the cluster's shared secrets).
SET_ONCE = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""
