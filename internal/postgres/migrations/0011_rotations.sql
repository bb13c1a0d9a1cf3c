-- Server-side rolls. Same as internal/sqlite/migrations/0011_rotations.sql,
-- in PostgreSQL's types.
CREATE TABLE rotations (
	old_access_key_id TEXT COLLATE "C" PRIMARY KEY,
	new_access_key_id TEXT COLLATE "C" NOT NULL,
	account           TEXT COLLATE "C" NOT NULL,
	application       TEXT COLLATE "C" NOT NULL,
	created_by        TEXT COLLATE "C" NOT NULL,
	created_at        BIGINT NOT NULL,
	quiet_period      BIGINT NOT NULL,
	expires_at        BIGINT,
	hard_limit_at     BIGINT,
	state             TEXT COLLATE "C" NOT NULL,
	stalled_at        BIGINT,
	done_at           BIGINT,
	outcome           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rotations_state ON rotations (state, created_at);
CREATE INDEX rotations_new_key ON rotations (new_access_key_id);
