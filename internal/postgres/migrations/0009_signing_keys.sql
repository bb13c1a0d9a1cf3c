-- Signing keys (issue 17): the public half of the client's key pair, as a
-- PEM PUBLIC KEY block. NULL for bearer keys. A signing key's
-- secret_digest is latchkey.SigningDigest(id), which no secret matches.
ALTER TABLE access_keys ADD COLUMN public_key TEXT;
