-- Per-account key prefixes: the secrets of an account's new application
-- keys start with key_prefix ("acme_live_") instead of "lksk_"; '' keeps
-- "lksk_". Existing keys are unchanged: a secret is found by its digest.
ALTER TABLE accounts ADD COLUMN key_prefix TEXT NOT NULL DEFAULT '';
