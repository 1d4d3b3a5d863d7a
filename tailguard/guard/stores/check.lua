-- tailguard guard: one atomic check (see tailguard/guard/stores/base.py for the plan's meaning).
-- KEYS: res_zset, kill_key, rate keys..., then per cap: cap_key, prev_key, alert_key
-- ARGV: now_ms, member, res_expire_ms, has_kill, kill_expire_ms, n_rates, n_caps,
--       per rate: limit, amount, expire_ms
--       per cap:  limit, amount, on_exceed, expire_ms, prev_weight_bp, alert_at
-- Returns {code, index, used[], alerted}; codes: 0 ok, 1 rate deny, 2 cap deny, 3 killed, 4 kill now
-- The plan arrives as ONE msgpack array (n_keys, keys..., args...): encoding it (msgspec, in C)
-- and decoding it (cmsgpack, in C) is several times cheaper than sixty RESP arguments or a
-- string split in Lua. KEYS[1] (the customer's reservation set) is also passed as a real key so
-- a cluster routes the call by the customer's hash tag; every other key shares that tag.
local F = cmsgpack.unpack(ARGV[1])
local nk = tonumber(F[1])
local KEYS = {}
local ARGV = {}
for i = 1, nk do KEYS[i] = F[1 + i] end
for i = nk + 2, #F do ARGV[#ARGV + 1] = F[i] end
local now = tonumber(ARGV[1])
local has_kill = tonumber(ARGV[4]) == 1
local nr = tonumber(ARGV[6])
local nc = tonumber(ARGV[7])
-- expiry times come from the caller's clock; Redis is given them as durations so that a clock
-- skew between gateway and Redis cannot expire a key early
local function ttl(at)
  local d = tonumber(at) - now
  if d < 1 then return 1 end
  return d
end

-- refund this customer's expired reservations (purge.lua, prepended when loaded)
purge_expired(KEYS[1], now)

if has_kill and redis.call('EXISTS', KEYS[2]) == 1 then
  return {3, -1, {}, 0}
end

for i = 1, nr do
  local a = 8 + (i - 1) * 3
  local cur = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
  if cur + tonumber(ARGV[a + 1]) > tonumber(ARGV[a]) then
    return {1, i - 1, {}, 0}
  end
end

local cbase = 3 + nr
local abase = 8 + nr * 3
local used = {}
for i = 1, nc do
  local kb = cbase + (i - 1) * 3
  local a = abase + (i - 1) * 6
  local v = redis.call('HMGET', KEYS[kb], 's', 'r')
  local u = tonumber(v[1] or 0) + tonumber(v[2] or 0)
  local w = tonumber(ARGV[a + 4])
  if w > 0 then
    local p = tonumber(redis.call('HGET', KEYS[kb + 1], 's') or 0)
    u = u + math.floor(p * w / 10000)
  end
  used[i] = u
  local limit = tonumber(ARGV[a])
  local onx = tonumber(ARGV[a + 2])
  if onx > 0 and limit >= 0 and u + tonumber(ARGV[a + 1]) > limit then
    if onx == 2 and has_kill then
      redis.call('SET', KEYS[2], '1', 'PX', ttl(ARGV[5]))
      return {4, i - 1, used, 0}
    end
    return {2, i - 1, used, 0}
  end
end

-- every limit passed: apply all of it
-- (a counter equal to what was just added is new or was empty: only then set its expiry, which
-- saves a call per key on the hot path; every key still always has a TTL)
for i = 1, nr do
  local a = 8 + (i - 1) * 3
  local amt = tonumber(ARGV[a + 1])
  if redis.call('INCRBY', KEYS[2 + i], amt) == amt then
    redis.call('PEXPIRE', KEYS[2 + i], ttl(ARGV[a + 2]))
  end
end
local alerted = 0
for i = 1, nc do
  local kb = cbase + (i - 1) * 3
  local a = abase + (i - 1) * 6
  local amt = tonumber(ARGV[a + 1])
  if redis.call('HINCRBY', KEYS[kb], 'r', amt) == amt then
    redis.call('PEXPIRE', KEYS[kb], ttl(ARGV[a + 3]))
  end
  local at = tonumber(ARGV[a + 5])
  if at >= 0 and used[i] + amt >= at then
    if redis.call('SET', KEYS[kb + 2], '1', 'NX', 'PX', ttl(ARGV[a + 3])) then
      alerted = 1
    end
  end
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl(ARGV[3]))
return {0, -1, used, alerted}
