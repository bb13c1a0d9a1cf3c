-- Imported keys (issue 20, part 1): keys brought from another system with
-- their own digest. hash_format is NULL for latchkey's own keys and names
-- the lookup the index uses otherwise (latchkey.HashFormat); salt is the
-- per-key salt of sha256-salted; imported_from the origin (tyk, unkey,
-- csv, ...); original_id the key's ID in that system when it did not fit
-- latchkey's; imported_at Unix microseconds.
ALTER TABLE access_keys ADD COLUMN hash_format TEXT;
ALTER TABLE access_keys ADD COLUMN salt BLOB;
ALTER TABLE access_keys ADD COLUMN imported_from TEXT;
ALTER TABLE access_keys ADD COLUMN original_id TEXT;
ALTER TABLE access_keys ADD COLUMN imported_at INTEGER;
