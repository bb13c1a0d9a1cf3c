-- Application names are unique in an account without regard to case:
-- "Billing" and "billing" cannot both exist. Names are ASCII letters, digits
-- and "-_." (latchkey.ValidateName), so lower() folds them completely. A
-- database that already holds such a pair is refused before this runs, with
-- the pairs named (sqlstore's preflight for version 6).
CREATE UNIQUE INDEX applications_name_fold ON applications (account, lower(name));
