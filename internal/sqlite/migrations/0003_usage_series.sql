-- Calls per key, minute and decision code (for usage charts), and the same
-- rolled up per hour once minutes pass the retention period. Minutes and
-- hours are Unix minutes (hour rows hold the minute the hour starts at).
CREATE TABLE usage_minutes (
	access_key_id TEXT NOT NULL,
	minute        INTEGER NOT NULL,
	code          TEXT NOT NULL,
	count         INTEGER NOT NULL,
	PRIMARY KEY (access_key_id, minute, code)
);
CREATE INDEX usage_minutes_minute ON usage_minutes (minute);
CREATE TABLE usage_hours (
	access_key_id TEXT NOT NULL,
	minute        INTEGER NOT NULL,
	code          TEXT NOT NULL,
	count         INTEGER NOT NULL,
	PRIMARY KEY (access_key_id, minute, code)
);
