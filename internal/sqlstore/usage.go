package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/latchkey/latchkey"
)

func unixMinute(t time.Time) int64 { return t.Unix() / 60 }

func fromUnixMinute(m int64) time.Time { return time.Unix(m*60, 0).UTC() }

const recordMinuteSQL = `INSERT INTO usage_minutes (access_key_id, minute, code, count) VALUES (?, ?, ?, ?)
	ON CONFLICT (access_key_id, minute, code) DO UPDATE SET count = usage_minutes.count + excluded.count`

// recordMinutes adds per-minute counts; called inside RecordUsage's
// transaction.
func (t *Tx) recordMinutes(ctx context.Context, s *sql.Stmt, id string, counts []latchkey.UsageCount) error {
	for _, c := range counts {
		_, err := t.execStmt(ctx, s, id, unixMinute(c.At), string(c.Code), c.Count)
		if err != nil {
			return err
		}
	}
	return nil
}

// UsageSeries implements latchkey.Store, within the operation timeout.
func (db *DB) UsageSeries(ctx context.Context, id string, from, to time.Time) ([]latchkey.UsageCount, error) {
	ctx, cancel := db.Bound(ctx)
	defer cancel()
	q := rebind(&db.Dialect, `SELECT minute, code, count FROM (
			SELECT minute, code, count FROM usage_minutes WHERE access_key_id = ? AND minute >= ? AND minute < ?
			UNION ALL
			SELECT minute, code, count FROM usage_hours WHERE access_key_id = ? AND minute >= ? AND minute < ?
		) u ORDER BY minute, code`)
	f, e := unixMinute(from), unixMinute(to.Add(59*time.Second))
	rows, err := db.Read.QueryContext(ctx, q, id, f, e, id, f-59, e)
	if err != nil {
		return nil, db.Err(err)
	}
	defer rows.Close()
	var out []latchkey.UsageCount
	for rows.Next() {
		var m int64
		var c latchkey.UsageCount
		if err := rows.Scan(&m, &c.Code, &c.Count); err != nil {
			return nil, db.Err(err)
		}
		c.At = fromUnixMinute(m)
		out = append(out, c)
	}
	return out, db.Err(rows.Err())
}

// CompactUsage implements latchkey.Store. It is not bounded by the
// operation timeout (see DB).
func (db *DB) CompactUsage(ctx context.Context, before time.Time) (int64, error) {
	cut := unixMinute(before)
	cut -= cut % 60 // only whole hours
	var n int64
	err := db.run(ctx, db.Write, false, func(ltx latchkey.Tx) error {
		t := ltx.(*Tx)
		ctx := t.ctx
		if _, err := t.exec(ctx, `INSERT INTO usage_hours (access_key_id, minute, code, count)
			SELECT access_key_id, minute - (minute % 60), code, SUM(count) FROM usage_minutes WHERE minute < ?
			GROUP BY access_key_id, minute - (minute % 60), code
			ON CONFLICT (access_key_id, minute, code) DO UPDATE SET count = usage_hours.count + excluded.count`, cut); err != nil {
			return err
		}
		res, err := t.exec(ctx, `DELETE FROM usage_minutes WHERE minute < ?`, cut)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
