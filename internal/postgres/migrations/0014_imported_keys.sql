-- Imported keys. Same as internal/sqlite/migrations/0014_imported_keys.sql,
-- in PostgreSQL's types. The columns are written once, at import, so the
-- notify trigger needs no change: the insert notifies.
ALTER TABLE access_keys ADD COLUMN hash_format TEXT COLLATE "C";
ALTER TABLE access_keys ADD COLUMN salt BYTEA;
ALTER TABLE access_keys ADD COLUMN imported_from TEXT;
ALTER TABLE access_keys ADD COLUMN original_id TEXT;
ALTER TABLE access_keys ADD COLUMN imported_at BIGINT;
