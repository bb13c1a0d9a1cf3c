-- A canary key never authorizes anything and raises an alert on any use
-- (issue 21). 0 = an ordinary key, 1 = a canary. An integer rather than a
-- boolean so that the shared SQL (internal/sqlstore) reads the same on
-- both stores.
ALTER TABLE access_keys ADD COLUMN canary INTEGER NOT NULL DEFAULT 0 CHECK (canary IN (0, 1));
