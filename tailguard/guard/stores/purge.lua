-- tailguard guard: refund one customer's expired reservations, so a crashed caller never leaks
-- budget. Prepended to check.lua and read.lua when they are loaded (tailguard/guard/stores/
-- redis.py), so the rule lives once. A reservation member names its own refunds:
-- id RS key US amount RS key US amount ... (tailguard.guard.stores.base.encode_member).
local function purge_expired(zkey, now)
  local expired = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0, 64)
  for _, m in ipairs(expired) do
    local first = true
    for part in string.gmatch(m, '[^\30]+') do
      if first then
        first = false
      else
        local sep = string.find(part, '\31[^\31]*$')
        local k = string.sub(part, 1, sep - 1)
        if redis.call('EXISTS', k) == 1 then
          -- 0 - x, not -x: Lua prints -0 for a zero amount, which HINCRBY refuses
          local r = redis.call('HINCRBY', k, 'r', 0 - tonumber(string.sub(part, sep + 1)))
          if r < 0 then redis.call('HSET', k, 'r', 0) end
        end
      end
    end
    redis.call('ZREM', zkey, m)
  end
end

