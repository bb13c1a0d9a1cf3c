-- Application names are unique in an account without regard to case. Same
-- as internal/sqlite/migrations/0006_application_names_fold_case.sql: names
-- are ASCII, so lower() under the column's "C" collation folds them
-- completely.
CREATE UNIQUE INDEX applications_name_fold ON applications (account, lower(name));
