-- GCRA for one access key's two limits, checked and taken atomically.
--
-- KEYS[1]  the key's state: a hash with the theoretical arrival time, in
--          microseconds, of the per-second limit ("s") and of the
--          per-minute one ("m")
-- ARGV[1]  now, in microseconds; 0 = the Redis server's clock
-- ARGV[2]  per-second limit: microseconds per call (0 = no such limit)
-- ARGV[3]  per-second limit: burst
-- ARGV[4]  per-minute limit: microseconds per call (0 = no such limit)
-- ARGV[5]  per-minute limit: burst
--
-- Returns {allowed (1 or 0), per-second remaining, per-second wait (us),
-- per-minute remaining, per-minute wait (us)}. Remaining counts the calls
-- still allowed at once after this one (if allowed); wait is how long
-- until the bucket allows a call (0 if it does now). A refused call takes
-- from neither bucket.
local now = tonumber(ARGV[1])
if now == 0 then
	local t = redis.call('TIME')
	now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local fields = {'s', 'm'}
local buckets = {}
local allowed = true
for i = 1, 2 do
	local interval = tonumber(ARGV[2 * i])
	local burst = tonumber(ARGV[2 * i + 1])
	if interval > 0 then
		local tat = tonumber(redis.call('HGET', KEYS[1], fields[i]) or now)
		if tat < now then
			tat = now
		end
		-- room left after taking this call, in microseconds of credit
		local room = burst * interval - (tat + interval - now)
		if room < 0 then
			allowed = false
		end
		buckets[i] = {tat = tat, interval = interval, room = room}
	end
end

local out = {allowed and 1 or 0, -1, 0, -1, 0}
local ttl = 0
for i = 1, 2 do
	local b = buckets[i]
	if b then
		if allowed then
			local tat = b.tat + b.interval
			redis.call('HSET', KEYS[1], fields[i], string.format('%d', tat))
			ttl = math.max(ttl, tat - now)
			out[2 * i] = math.floor(b.room / b.interval)
		else
			-- nothing taken: the room before this call
			out[2 * i] = math.max(math.floor((b.room + b.interval) / b.interval), 0)
			out[2 * i + 1] = math.max(-b.room, 0)
		end
	end
end
if allowed and ttl > 0 then
	-- Once every bucket is full again the state says nothing.
	redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000) + 1000)
end
return out
