-- Restrictions (JSON documents validated by the domain) on applications and
-- keys, report-only restrictions on keys, and what those would have denied.
ALTER TABLE applications ADD COLUMN restrictions TEXT;
ALTER TABLE access_keys ADD COLUMN restrictions TEXT;
ALTER TABLE access_keys ADD COLUMN report_only TEXT;
ALTER TABLE access_keys ADD COLUMN last_would_deny_at INTEGER;
ALTER TABLE access_keys ADD COLUMN last_would_deny_ip TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN last_would_deny_ua TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN last_would_deny_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN would_deny_count INTEGER NOT NULL DEFAULT 0;
