-- tailguard guard: settle (or release) one reservation.
-- KEYS: res_zset, item keys..., rate keys...
-- ARGV: member ('-' = no reservation: a re-sync), n_items, n_rates, now_ms,
--       per item: reserved, actual, expire_ms; per rate: amount
-- The reservation is refunded only if still live (not expired and refunded already); the actual
-- amount is always added, so a late settle still counts the money that was spent.
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
local live = 0
if ARGV[1] ~= '-' then live = redis.call('ZREM', KEYS[1], ARGV[1]) end
local n = tonumber(ARGV[2])
local nr = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local out = {}
for i = 1, n do
  local k = KEYS[1 + i]
  local a = 5 + (i - 1) * 3
  local fresh = false
  if live == 1 then
    local r = redis.call('HINCRBY', k, 'r', -tonumber(ARGV[a]))
    if r < 0 then
      redis.call('HSET', k, 'r', 0)
      fresh = true
    end
  end
  local act = tonumber(ARGV[a + 1])
  if act ~= 0 then
    out[i] = redis.call('HINCRBY', k, 's', act)
    if out[i] == act then fresh = true end
  else
    out[i] = tonumber(redis.call('HGET', k, 's') or 0)
  end
  if fresh then  -- a key (re)created here gets its expiry; the others keep theirs
    local d = tonumber(ARGV[a + 2]) - now
    if d < 1 then d = 1 end
    redis.call('PEXPIRE', k, d)
  end
end
for i = 1, nr do
  local k = KEYS[1 + n + i]
  if redis.call('EXISTS', k) == 1 then
    local v = redis.call('INCRBY', k, ARGV[4 + n * 3 + i])
    if v < 0 then redis.call('SET', k, 0, 'KEEPTTL') end
  end
end
return out
