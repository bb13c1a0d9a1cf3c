-- A key's usage (counts; last use, refusal and would-be refusal, each with
-- its time, address and user agent) moves out of access_keys into a narrow
-- table of its own, as on SQLite (where the narrow table, in ID order, is
-- what makes the usage flush cheap), so that both stores share one schema
-- and one set of queries. A key without a row has no usage; deleting a key
-- deletes its row.
CREATE TABLE key_usage (
	access_key_id          TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES access_keys (id) ON DELETE CASCADE,
	use_count              BIGINT NOT NULL DEFAULT 0,
	reject_count           BIGINT NOT NULL DEFAULT 0,
	would_deny_count       BIGINT NOT NULL DEFAULT 0,
	last_used_at           BIGINT,
	last_used_ip           TEXT NOT NULL DEFAULT '',
	last_used_ua           TEXT NOT NULL DEFAULT '',
	last_rejected_at       BIGINT,
	last_rejected_ip       TEXT NOT NULL DEFAULT '',
	last_rejected_ua       TEXT NOT NULL DEFAULT '',
	last_rejected_reason   TEXT NOT NULL DEFAULT '',
	last_would_deny_at     BIGINT,
	last_would_deny_ip     TEXT NOT NULL DEFAULT '',
	last_would_deny_ua     TEXT NOT NULL DEFAULT '',
	last_would_deny_reason TEXT NOT NULL DEFAULT ''
);
INSERT INTO key_usage (access_key_id, use_count, reject_count, would_deny_count,
	last_used_at, last_used_ip, last_used_ua,
	last_rejected_at, last_rejected_ip, last_rejected_ua, last_rejected_reason,
	last_would_deny_at, last_would_deny_ip, last_would_deny_ua, last_would_deny_reason)
SELECT id, use_count, reject_count, would_deny_count,
	last_used_at, last_used_ip, last_used_ua,
	last_rejected_at, last_rejected_ip, last_rejected_ua, last_rejected_reason,
	last_would_deny_at, last_would_deny_ip, last_would_deny_ua, last_would_deny_reason
FROM access_keys
WHERE use_count <> 0 OR reject_count <> 0 OR would_deny_count <> 0
	OR last_used_at IS NOT NULL OR last_rejected_at IS NOT NULL OR last_would_deny_at IS NOT NULL
ORDER BY id;
ALTER TABLE access_keys DROP COLUMN use_count;
ALTER TABLE access_keys DROP COLUMN reject_count;
ALTER TABLE access_keys DROP COLUMN would_deny_count;
ALTER TABLE access_keys DROP COLUMN last_used_at;
ALTER TABLE access_keys DROP COLUMN last_used_ip;
ALTER TABLE access_keys DROP COLUMN last_used_ua;
ALTER TABLE access_keys DROP COLUMN last_rejected_at;
ALTER TABLE access_keys DROP COLUMN last_rejected_ip;
ALTER TABLE access_keys DROP COLUMN last_rejected_ua;
ALTER TABLE access_keys DROP COLUMN last_rejected_reason;
ALTER TABLE access_keys DROP COLUMN last_would_deny_at;
ALTER TABLE access_keys DROP COLUMN last_would_deny_ip;
ALTER TABLE access_keys DROP COLUMN last_would_deny_ua;
ALTER TABLE access_keys DROP COLUMN last_would_deny_reason;
