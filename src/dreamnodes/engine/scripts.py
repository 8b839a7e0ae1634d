"""The shared limiter's Lua scripts: each runs atomically in Redis, on Redis's own clock.

Keys of one family of one key and base URL (one hash tag, so one cluster slot):
`slots` (sorted set: token -> lease expiry), `window` (sorted set: token -> when counted),
`hold` (no create before this time), `streak` (429s in a row), `learned` (the service's own
creates-per-window figure). Times are seconds since the epoch, as floats in strings (a Lua
number returned to Redis would be cut to an integer).
"""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: slots, window, hold, learned. ARGV: token, cap, per_window, window_s, lease_s.
# -> {1, now} granted; {0, seconds to wait} (-1: until a slot is released).
ACQUIRE = (
    _NOW
    + """
local window = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local per = tonumber(redis.call('GET', KEYS[4]) or ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return {0, '-1'}
end
local wake = tonumber(redis.call('GET', KEYS[3]) or '0')
if redis.call('ZCARD', KEYS[2]) >= per then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  wake = math.max(wake, tonumber(oldest[2]) + window)
end
if wake > now then
  return {0, tostring(wake - now)}
end
local lease = tonumber(ARGV[5])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 1000) + 1000)
redis.call('PEXPIRE', KEYS[2], math.ceil(window * 2000) + 1000)
return {1, tostring(now)}
"""
)

# KEYS: window. ARGV: token, window_s. The create was answered: its entry counts from now.
ANSWERED = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 2000) + 1000)
return 1
"""
)

# KEYS: slots, streak, freed channel. ARGV: token, family. The generation ended: its slot
# frees (said on the channel, for the processes waiting for one), the 429 streak ends.
RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then redis.call('PUBLISH', KEYS[3], ARGV[2]) end
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: slots, window, freed channel. ARGV: token, family. A 429: the entry leaves the
# window, the slot frees.
REFUSED = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then redis.call('PUBLISH', KEYS[3], ARGV[2]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: slots. ARGV: lease_s, tokens... Renew the leases of the slots this process holds.
RENEW = (
    _NOW
    + """
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 1000) + 1000)
return 1
"""
)

# KEYS: hold, streak, learned. ARGV: retry_after ('' if none), window_s, per_window.
# A 429: hold every create of the family (Retry-After, else a guess doubling per 429 in a row).
RATE_LIMITED = (
    _NOW
    + """
local window = tonumber(ARGV[2])
local streak = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], math.ceil(window * 4000) + 1000)
local hold
if ARGV[1] ~= '' then
  hold = math.min(tonumber(ARGV[1]), 2 * window)
else
  local per = tonumber(redis.call('GET', KEYS[3]) or ARGV[3])
  hold = math.min(window / per * 2 ^ (streak - 1), window)
end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + hold > current then
  redis.call('SET', KEYS[1], tostring(now + hold), 'PX', math.ceil(hold * 1000) + 1000)
end
return tostring(hold)
"""
)

# KEYS: hold, window, learned. ARGV: limit, remaining, reset ('' if absent), window_s, per.
# X-RateLimit-*: the service's own figure replaces ours; Remaining 0 while our window has room
# means others use the key too: hold until Reset.
LEARN = (
    _NOW
    + """
local window = tonumber(ARGV[4])
if ARGV[1] ~= '' and tonumber(ARGV[1]) >= 1 then
  redis.call('SET', KEYS[3], tostring(math.floor(tonumber(ARGV[1]))), 'EX', 86400)
end
if ARGV[2] ~= '' and tonumber(ARGV[2]) == 0 and ARGV[3] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  local per = tonumber(redis.call('GET', KEYS[3]) or ARGV[5])
  if redis.call('ZCARD', KEYS[2]) < per then
    local hold = math.min(math.max(0, tonumber(ARGV[3]) - now), window)
    local current = tonumber(redis.call('GET', KEYS[1]) or '0')
    if hold > 0 and now + hold > current then
      redis.call('SET', KEYS[1], tostring(now + hold), 'PX', math.ceil(hold * 1000) + 1000)
    end
  end
end
return 1
"""
)

# KEYS: slots, window, hold, learned. ARGV: window_s. -> {running, in_window, held_s, learned}
SNAPSHOT = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[1]))
local hold = tonumber(redis.call('GET', KEYS[3]) or '0')
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]),
        tostring(math.max(0, hold - now)), redis.call('GET', KEYS[4]) or ''}
"""
)
