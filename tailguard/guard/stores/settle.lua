-- tailguard guard: settle (or release) one reservation.
-- KEYS: res_zset, item keys..., rate keys...
-- ARGV: member ('-' = no reservation: a re-sync), n_items, n_rates, now_ms, settle_id ('' = none),
--       per item: reserved, actual, expire_ms; per rate: amount
-- The reservation is refunded only if still live (not expired and refunded already); the actual
-- amount is always added, so a late settle still counts the money that was spent.
-- A settle id is applied at most once: the ids applied in the last DONE_MS (of Redis' own clock,
-- so a command queued in a hung server and run late is still remembered) are kept in the sorted
-- set KEYS[1]..':done'; a settle sent again (a replay after a time-out) only reads the totals.
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
local n = tonumber(ARGV[2])
local nr = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local sid = ARGV[5]
local out = {}
if sid ~= '' then
  local DONE_MS = 3600000
  local t = redis.call('TIME')
  local tms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local dk = KEYS[1] .. ':done'
  local fresh = redis.call('ZADD', dk, 'NX', tms, sid)
  redis.call('ZREMRANGEBYSCORE', dk, '-inf', tms - DONE_MS)
  redis.call('PEXPIRE', dk, DONE_MS)
  if fresh == 0 then  -- applied before: report the totals, change nothing
    for i = 1, n do out[i] = tonumber(redis.call('HGET', KEYS[1 + i], 's') or 0) end
    return out
  end
end
local live = 0
if ARGV[1] ~= '-' then live = redis.call('ZREM', KEYS[1], ARGV[1]) end
for i = 1, n do
  local k = KEYS[1 + i]
  local a = 6 + (i - 1) * 3
  local fresh = false
  if live == 1 then
    local r = redis.call('HINCRBY', k, 'r', 0 - tonumber(ARGV[a]))  -- not -x: Lua prints -0 for a zero amount
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
    local v = redis.call('INCRBY', k, ARGV[5 + n * 3 + i])
    if v < 0 then redis.call('SET', k, 0, 'KEEPTTL') end
  end
end
return out
