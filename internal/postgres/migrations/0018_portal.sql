-- The consumer portal (/portal): an application's owner is the consumer
-- organisation whose people manage its keys there ('' for none); an
-- account's branding is the portal's name, logo URL and colours ('' keeps
-- the default).
ALTER TABLE applications ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX applications_owner ON applications (account, owner);
ALTER TABLE accounts ADD COLUMN brand_name TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN brand_logo_url TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN brand_primary_color TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN brand_accent_color TEXT NOT NULL DEFAULT '';
