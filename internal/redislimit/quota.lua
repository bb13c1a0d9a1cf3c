-- One decision on a key's quota, shared by every replica: check the
-- period, take cost from the units leased into Redis only if enough are
-- there, and say what is left. Atomic, one round trip.
--
-- KEYS[1]  the quota's state for one generation: a hash with the period
--          number ("p"), the units leased from the ledger into Redis and
--          not spent ("r"), and what the ledger had left at the latest
--          lease ("l", -1 unknown)
-- ARGV[1]  the period at the caller's clock (from the refill interval
--          and anchor); a later period starts with nothing leased
-- ARGV[2]  cost: what the call takes
-- ARGV[3]  need: what must be there for the call (cost, at least 1)
-- ARGV[4]  add: units just leased from the ledger into Redis (0: none)
-- ARGV[5]  what the ledger had left after that lease (-1: unchanged)
-- ARGV[6]  TTL of the state in milliseconds (0: none)
--
-- Returns {allowed (1 or 0), units left in Redis, ledger left (-1
-- unknown), the period of the state}. A period in Redis later than
-- ARGV[1] (the caller's clock is behind) refuses and changes nothing.
local period = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local need = tonumber(ARGV[3])
local add = tonumber(ARGV[4])
local left = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])

local st = redis.call('HMGET', KEYS[1], 'p', 'r', 'l')
local p = tonumber(st[1]) or -1
local r = tonumber(st[2]) or 0
local l = tonumber(st[3]) or -1
if p > period then
	return {0, 0, -1, p}
end
local dirty = p < period
if dirty then
	-- The units of an ended period are worth nothing.
	r, l = 0, -1
end
if add > 0 then
	r = r + add
	dirty = true
end
if left >= 0 then
	-- Within a generation and period the ledger only goes down: leases
	-- reported out of order keep the lowest figure.
	if l < 0 or left < l then
		l = left
		dirty = true
	end
end
local ok = 0
if r >= need then
	r = r - cost
	ok = 1
	dirty = dirty or cost > 0
end
if dirty then
	redis.call('HSET', KEYS[1], 'p', string.format('%d', period), 'r', string.format('%d', r), 'l', string.format('%d', l))
	if ttl > 0 then
		redis.call('PEXPIRE', KEYS[1], ttl)
	end
end
return {ok, r, l, period}
