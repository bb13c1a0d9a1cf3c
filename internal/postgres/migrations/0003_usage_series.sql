-- Calls per key, minute and decision code, and the same rolled up per hour.
-- Same as internal/sqlite/migrations/0003_usage_series.sql.
CREATE TABLE usage_minutes (
	access_key_id TEXT COLLATE "C" NOT NULL,
	minute        BIGINT NOT NULL,
	code          TEXT COLLATE "C" NOT NULL,
	count         BIGINT NOT NULL,
	PRIMARY KEY (access_key_id, minute, code)
);
CREATE INDEX usage_minutes_minute ON usage_minutes (minute);
CREATE TABLE usage_hours (
	access_key_id TEXT COLLATE "C" NOT NULL,
	minute        BIGINT NOT NULL,
	code          TEXT COLLATE "C" NOT NULL,
	count         BIGINT NOT NULL,
	PRIMARY KEY (access_key_id, minute, code)
);
