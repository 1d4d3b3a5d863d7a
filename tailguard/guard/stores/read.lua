-- tailguard guard: read cap counters for a status, after refunding expired reservations.
-- KEYS: res_zset, cap keys...; ARGV: now_ms. Returns spent, reserved per cap key, flattened.
purge_expired(KEYS[1], tonumber(ARGV[1]))
local out = {}
for i = 2, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 's', 'r')
  out[#out + 1] = tonumber(v[1] or 0)
  out[#out + 1] = tonumber(v[2] or 0)
end
return out
