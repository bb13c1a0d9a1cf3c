package sqlstore

import (
	"database/sql"
	"time"
)

// Times are stored as Unix microseconds in both databases: one encoding,
// exact round trips, and cheap comparisons in SQL.

func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}

var nowFunc = func() time.Time { return time.Now().UTC() }
