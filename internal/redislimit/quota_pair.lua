-- One decision on two quotas at once, a key's and its identity's, shared
-- by every replica: the call takes cost from both only if both hold
-- need, so that a refusal by one takes nothing from the other. Each
-- quota's state is what quota.lua keeps (a hash: period "p", units
-- leased into Redis and not spent "r", ledger left at the latest lease
-- "l"). Atomic, one round trip.
--
-- KEYS[1], KEYS[2]  the two quotas' states
-- ARGV[1]  cost: what the call takes from each
-- ARGV[2]  need: what each must hold for the call (cost, at least 1)
-- ARGV[3..6]   the first quota's period, add, ledger left (-1:
--              unchanged) and TTL in milliseconds (0: none), as in
--              quota.lua
-- ARGV[7..10]  the second quota's
--
-- Returns {allowed (1 or 0), then for each quota: units left in Redis,
-- ledger left (-1 unknown), the period of the state}. A period in Redis
-- later than the one given refuses, and changes nothing of that quota.
local cost = tonumber(ARGV[1])
local need = tonumber(ARGV[2])

local function load(i)
	local base = 3 + (i - 1) * 4
	local q = {
		key = KEYS[i],
		period = tonumber(ARGV[base]),
		add = tonumber(ARGV[base + 1]),
		left = tonumber(ARGV[base + 2]),
		ttl = tonumber(ARGV[base + 3]),
	}
	local st = redis.call('HMGET', q.key, 'p', 'r', 'l')
	q.p = tonumber(st[1]) or -1
	q.r = tonumber(st[2]) or 0
	q.l = tonumber(st[3]) or -1
	q.ahead = q.p > q.period
	q.dirty = false
	if q.ahead then
		return q
	end
	if q.p < q.period then
		-- The units of an ended period are worth nothing.
		q.r, q.l, q.dirty = 0, -1, true
	end
	q.p = q.period
	if q.add > 0 then
		q.r = q.r + q.add
		q.dirty = true
	end
	if q.left >= 0 and (q.l < 0 or q.left < q.l) then
		q.l = q.left
		q.dirty = true
	end
	return q
end

local a, b = load(1), load(2)
local ok = 0
if not a.ahead and not b.ahead and a.r >= need and b.r >= need then
	ok = 1
	a.r, b.r = a.r - cost, b.r - cost
	if cost > 0 then
		a.dirty, b.dirty = true, true
	end
end
for _, q in ipairs({a, b}) do
	if q.dirty then
		redis.call('HSET', q.key, 'p', string.format('%d', q.p), 'r', string.format('%d', q.r), 'l', string.format('%d', q.l))
		if q.ttl > 0 then
			redis.call('PEXPIRE', q.key, q.ttl)
		end
	end
end
local function out(q)
	if q.ahead then
		return 0, -1, q.p
	end
	return q.r, q.l, q.p
end
local ar, al, ap = out(a)
local br, bl, bp = out(b)
return {ok, ar, al, ap, br, bl, bp}
