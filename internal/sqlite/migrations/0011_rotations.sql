-- Server-side rolls (POST /v1/access-keys/{id}/roll): one row per old key
-- rolled, with the plan for it. Times are Unix microseconds (UTC); periods
-- are seconds. The roll's own actions are entries of policy_actions.
CREATE TABLE rotations (
	old_access_key_id TEXT PRIMARY KEY,
	new_access_key_id TEXT NOT NULL,
	account           TEXT NOT NULL,
	application       TEXT NOT NULL,
	created_by        TEXT NOT NULL,
	created_at        INTEGER NOT NULL,
	quiet_period      INTEGER NOT NULL,
	expires_at        INTEGER,
	hard_limit_at     INTEGER,
	state             TEXT NOT NULL,
	stalled_at        INTEGER,
	done_at           INTEGER,
	outcome           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rotations_state ON rotations (state, created_at);
CREATE INDEX rotations_new_key ON rotations (new_access_key_id);
