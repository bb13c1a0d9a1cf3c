-- Binding a key to a TLS client certificate (RFC 8705 style): the
-- certificate's SHA-256 thumbprint as x5t#S256 (43 base64url
-- characters); NULL for an unbound key.
ALTER TABLE access_keys ADD COLUMN cert_thumbprint TEXT;
