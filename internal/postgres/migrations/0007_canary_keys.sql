-- A canary key never authorizes anything and raises an alert on any use
-- (issue 21). Same as internal/sqlite/migrations/0007_canary_keys.sql:
-- 0 = an ordinary key, 1 = a canary, an integer so the shared SQL reads the
-- same on both stores.
ALTER TABLE access_keys ADD COLUMN canary INTEGER NOT NULL DEFAULT 0 CHECK (canary IN (0, 1));
