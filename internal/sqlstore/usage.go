package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey"
)

func unixMinute(t time.Time) int64 { return t.Unix() / 60 }

func fromUnixMinute(m int64) time.Time { return time.Unix(m*60, 0).UTC() }

// A usage batch travels to the database in ID order, in statements that
// each take many rows: one row per key,
//
//	[id, uses, rejections, would-deny,
//	 used at, used IP, used UA,
//	 rejected at, rejected IP, rejected UA, reason,
//	 would-deny at, would-deny IP, would-deny UA, would-deny reason]
//
// (times in microseconds or null), and one row per key, minute and code,
// [id, minute, code, count]. On PostgreSQL every statement takes a JSON
// array of at most usageStmtKeys rows. On SQLite the rows of keys with
// nothing but uses (five values each) and the minute rows are bound
// values, sqliteRows to a statement prepared once; the other keys' rows
// (a refusal or a would-deny, seldom) are a JSON array. A statement per
// key and per minute bucket spent about a quarter of the flush in the
// driver (binding, a goroutine and a context per statement, 65
// allocations a key); the rest is SQLite's pager: pages written per key.
// Those are few because a key's usage is a narrow row in key_usage,
// stored in ID order, and the recorder writes keys next to each other in
// ID together (see docs/benchmarks.md, "Usage flush in ID order").

// A key's usage is its row in key_usage, made by its first flush. The
// SET expressions are those of one key's merge: each sees the row's old
// values, so the conditions agree on which side is newer.
const usageSet = `
	use_count = key_usage.use_count + excluded.use_count,
	reject_count = key_usage.reject_count + excluded.reject_count,
	would_deny_count = key_usage.would_deny_count + excluded.would_deny_count,
	last_used_ip = CASE WHEN ` + newerUse + ` THEN excluded.last_used_ip ELSE key_usage.last_used_ip END,
	last_used_ua = CASE WHEN ` + newerUse + ` THEN excluded.last_used_ua ELSE key_usage.last_used_ua END,
	last_used_at = CASE WHEN ` + newerUse + ` THEN excluded.last_used_at ELSE key_usage.last_used_at END,
	last_rejected_ip = CASE WHEN ` + newerRej + ` THEN excluded.last_rejected_ip ELSE key_usage.last_rejected_ip END,
	last_rejected_ua = CASE WHEN ` + newerRej + ` THEN excluded.last_rejected_ua ELSE key_usage.last_rejected_ua END,
	last_rejected_reason = CASE WHEN ` + newerRej + ` THEN excluded.last_rejected_reason ELSE key_usage.last_rejected_reason END,
	last_rejected_at = CASE WHEN ` + newerRej + ` THEN excluded.last_rejected_at ELSE key_usage.last_rejected_at END,
	last_would_deny_ip = CASE WHEN ` + newerWD + ` THEN excluded.last_would_deny_ip ELSE key_usage.last_would_deny_ip END,
	last_would_deny_ua = CASE WHEN ` + newerWD + ` THEN excluded.last_would_deny_ua ELSE key_usage.last_would_deny_ua END,
	last_would_deny_reason = CASE WHEN ` + newerWD + ` THEN excluded.last_would_deny_reason ELSE key_usage.last_would_deny_reason END,
	last_would_deny_at = CASE WHEN ` + newerWD + ` THEN excluded.last_would_deny_at ELSE key_usage.last_would_deny_at END`

const (
	newerUse = `excluded.last_used_at IS NOT NULL AND (key_usage.last_used_at IS NULL OR key_usage.last_used_at < excluded.last_used_at)`
	newerRej = `excluded.last_rejected_at IS NOT NULL AND (key_usage.last_rejected_at IS NULL OR key_usage.last_rejected_at < excluded.last_rejected_at)`
	newerWD  = `excluded.last_would_deny_at IS NOT NULL AND (key_usage.last_would_deny_at IS NULL OR key_usage.last_would_deny_at < excluded.last_would_deny_at)`

	usageInsert = `INSERT INTO key_usage (access_key_id, use_count, reject_count, would_deny_count,
		last_used_at, last_used_ip, last_used_ua,
		last_rejected_at, last_rejected_ip, last_rejected_ua, last_rejected_reason,
		last_would_deny_at, last_would_deny_ip, last_would_deny_ua, last_would_deny_reason)`
)

// sqliteUsageSQL reads its array with jsonb_each (as JSONB, each row is
// not parsed again for each of its fields); sqliteUseSQL and
// sqliteMinutesSQL take rows of bound values. Rows are taken in ID order
// (the batch is sorted), so the B-tree pages are visited in order;
// key_usage is stored in ID order (WITHOUT ROWID), so keys next to each
// other in ID share its pages. sqliteKeyLive leaves out a key deleted
// meanwhile (and its minutes). A failed statement rolls the whole
// transaction back, so a statement need not undo its own rows first.
var sqliteUsageSQL = usageInsert + `
	SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6,
		value->>7, value->>8, value->>9, value->>10, value->>11, value->>12, value->>13, value->>14
	FROM jsonb_each(?)
	WHERE ` + sqliteKeyLive("value->>0") + `
	ON CONFLICT (access_key_id) DO UPDATE SET` + usageSet

// sqliteKeyLive is the SQLite statements' test that the key of a row
// (the expression id) still exists, so that a key deleted since its
// usage was taken is left out. A row of key_usage proves it without
// reading access_keys: deleting a key deletes its row (ON DELETE
// CASCADE; the store turns foreign keys on), and OR tries it first. A key
// used before has one, and the minutes statement runs after the usage
// rows are written, so only a key's first flush reads access_keys' ID
// index. Under load that index's pages are evicted from the writer's
// cache by other writes and read back, a page per key and flush
// (docs/benchmarks.md, "A sixth host kind").
func sqliteKeyLive(id string) string {
	return `(EXISTS (SELECT 1 FROM key_usage WHERE access_key_id = ` + id + `) OR EXISTS (SELECT 1 FROM access_keys WHERE id = ` + id + `))`
}

// sqliteRows is how many rows one of SQLite's VALUES statements
// (sqliteUseSQL, sqliteMinutesSQL) takes. Each is prepared once with that
// many rows of placeholders; the last of a flush binds NULL to the rows
// it does not use, which its WHERE leaves out. Bound values cost the
// driver less than JSON costs SQLite: reading the same rows from JSON
// arrays (value->>N for each field, each walking the row from its start)
// was a third of the flush's CPU (docs/benchmarks.md).
const sqliteRows = 200

var (
	// sqliteUseSQL is sqliteUsageSQL's merge for keys with nothing but
	// uses and a last use, most keys of most flushes: rows of five
	// values, (id, uses, used at, used IP, used UA), setting four
	// columns instead of fourteen. It updates the keys' rows in place
	// (a seek each), and RecordUsage runs sqliteUseNewSQL only when it
	// updated fewer rows than it was given: a key's first flush, or a
	// key deleted meanwhile. An upsert that first tested that each key
	// still exists (sqliteKeyLive) sought each key's row twice, and
	// cost a third more (docs/benchmarks.md, "Updates before inserts").
	sqliteUseSQL = `UPDATE key_usage SET
	use_count = use_count + v.column2,
	last_used_ip = CASE WHEN ` + newerUseV + ` THEN v.column4 ELSE last_used_ip END,
	last_used_ua = CASE WHEN ` + newerUseV + ` THEN v.column5 ELSE last_used_ua END,
	last_used_at = CASE WHEN ` + newerUseV + ` THEN v.column3 ELSE last_used_at END
	FROM (VALUES ` + placeholderRows(useCols, sqliteRows) + `) AS v
	WHERE key_usage.access_key_id = v.column1`
	// sqliteUseNewSQL makes the rows sqliteUseSQL found missing, of
	// keys that still exist; the rows it updated are left alone.
	sqliteUseNewSQL = `INSERT INTO key_usage (access_key_id, use_count, last_used_at, last_used_ip, last_used_ua)
	SELECT column1, column2, column3, column4, column5 FROM (VALUES ` + placeholderRows(useCols, sqliteRows) + `)
	WHERE column1 IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM key_usage WHERE access_key_id = column1)
		AND EXISTS (SELECT 1 FROM access_keys WHERE id = column1)`
	// sqliteMinutesSQL adds minute rows of four values, (id, minute,
	// code, count), to the rows there are; sqliteMinutesNewSQL makes
	// those it found missing (a key's first flush in a minute), of keys
	// that still exist.
	sqliteMinutesSQL = `UPDATE usage_minutes SET count = count + v.column4
	FROM (VALUES ` + placeholderRows(minuteCols, sqliteRows) + `) AS v
	WHERE usage_minutes.access_key_id = v.column1 AND usage_minutes.minute = v.column2 AND usage_minutes.code = v.column3`
	sqliteMinutesNewSQL = `INSERT INTO usage_minutes (access_key_id, minute, code, count)
	SELECT column1, column2, column3, column4 FROM (VALUES ` + placeholderRows(minuteCols, sqliteRows) + `)
	WHERE column1 IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM usage_minutes WHERE access_key_id = column1 AND minute = column2 AND code = column3)
		AND ` + sqliteKeyLive("column1")
)

// newerUseV is newerUse for sqliteUseSQL's rows.
const newerUseV = `v.column3 IS NOT NULL AND (key_usage.last_used_at IS NULL OR key_usage.last_used_at < v.column3)`

// The values of a row of sqliteUseSQL and of sqliteMinutesSQL.
const useCols, minuteCols = 5, 4

// placeholderRows returns rows VALUES rows of cols placeholders each:
// "(?,?),(?,?)" for 2 and 2.
func placeholderRows(cols, rows int) string {
	row := "(" + strings.Repeat("?,", cols-1) + "?)"
	return strings.Repeat(row+",", rows-1) + row
}

// useArgs appends the values of sqliteUseSQL's rows for us (at most
// sqliteRows), then NULLs for the rows left.
func useArgs(args []any, us []latchkey.UsageUpdate) []any {
	for i := range us {
		u := &us[i]
		var at any // NULL: no last use
		var ip, ua string
		if r := u.LastUsed; r != nil {
			at, ip, ua = toMicros(r.At), r.IP, r.UserAgent
		}
		args = append(args, u.AccessKeyID, u.Uses, at, ip, ua)
	}
	return padArgs(args, useCols)
}

// minuteArgs appends the values of sqliteMinutesSQL's rows for ms (at
// most sqliteRows), then NULLs for the rows left.
func minuteArgs(args []any, ms []minuteRow) []any {
	for _, m := range ms {
		args = append(args, m.id, m.minute, string(m.code), m.count)
	}
	return padArgs(args, minuteCols)
}

func padArgs(args []any, cols int) []any {
	for len(args) < cols*sqliteRows {
		args = append(args, nil)
	}
	return args
}

// On PostgreSQL the rows are first locked in ID order, as one key at a
// time locked them before: two replicas flushing the same keys then
// cannot deadlock, whatever plan the UPDATE's join takes.
const (
	pgLockUsageSQL = `SELECT 1 FROM access_keys WHERE id IN (SELECT e->>0 FROM json_array_elements(CAST(? AS json)) e)
	ORDER BY id FOR UPDATE`
	pgUsageSQL = usageInsert + `
	SELECT e->>0, CAST(e->>1 AS BIGINT), CAST(e->>2 AS BIGINT), CAST(e->>3 AS BIGINT),
		CAST(e->>4 AS BIGINT), e->>5, e->>6,
		CAST(e->>7 AS BIGINT), e->>8, e->>9, e->>10,
		CAST(e->>11 AS BIGINT), e->>12, e->>13, e->>14
	FROM json_array_elements(CAST(? AS json)) e
	WHERE EXISTS (SELECT 1 FROM access_keys WHERE id = e->>0)
	ON CONFLICT (access_key_id) DO UPDATE SET` + usageSet
	pgMinutesSQL = `INSERT INTO usage_minutes (access_key_id, minute, code, count)
	SELECT e->>0, CAST(e->>1 AS BIGINT), e->>2, CAST(e->>3 AS BIGINT) FROM json_array_elements(CAST(? AS json)) e
	WHERE EXISTS (SELECT 1 FROM access_keys WHERE id = e->>0)
	ON CONFLICT (access_key_id, minute, code) DO UPDATE SET count = usage_minutes.count + excluded.count`
)

// usageStmtKeys bounds the keys (and the minute rows) of one statement,
// so that a batch of any size is sent in documents of bounded size (about
// 150 bytes a key), in one transaction.
const usageStmtKeys = 1000

// RecordUsage merges a batch of usage into the keys' stored usage: counts
// add up; the newest time wins, with its IP, user agent and reason. Keys
// deleted meanwhile are left out. It runs within the operation timeout: a
// flush that cannot finish keeps its counts for the next one.
func (db *DB) RecordUsage(ctx context.Context, batch []latchkey.UsageUpdate) error {
	if len(batch) == 0 {
		return nil
	}
	keys, mins, err := mergeUsage(batch)
	if err != nil {
		return err
	}
	if db.Dialect.Numbered {
		return db.Update(ctx, func(ltx latchkey.Tx) error { return recordUsagePG(ltx.(*Tx), keys, mins) })
	}
	// On SQLite the statements are prepared once and kept (DB.Prepared):
	// compiling them again for every transaction was 8% of the flush's
	// CPU.
	var st [5]*sql.Stmt
	for i, q := range [...]string{sqliteUseSQL, sqliteUseNewSQL, sqliteUsageSQL, sqliteMinutesSQL, sqliteMinutesNewSQL} {
		if st[i], err = db.Prepared(ctx, q); err != nil {
			return err
		}
	}
	use, useNew, usage, minutes, minutesNew := st[0], st[1], st[2], st[3], st[4]
	return db.Update(ctx, func(ltx latchkey.Tx) error {
		t := ltx.(*Tx)
		ctx := t.ctx // already the transaction's: no context per statement
		// One writer: no lock order to keep. Keys with nothing but uses
		// go in a statement of their own.
		plain, full := splitPlainUsage(keys)
		args := make([]any, 0, useCols*sqliteRows)
		for start := 0; start < len(plain); start += sqliteRows {
			rows := plain[start:min(start+sqliteRows, len(plain))]
			args = useArgs(args[:0], rows)
			if err := t.updateThenInsert(ctx, use, useNew, len(rows), args); err != nil {
				return err
			}
		}
		for start := 0; start < len(full); start += usageStmtKeys {
			doc, err := encodeKeys(full[start:min(start+usageStmtKeys, len(full))])
			if err != nil {
				return err
			}
			if _, err := t.execStmt(ctx, usage, doc); err != nil {
				return err
			}
		}
		for start := 0; start < len(mins); start += sqliteRows {
			rows := mins[start:min(start+sqliteRows, len(mins))]
			args = minuteArgs(args[:0], rows)
			if err := t.updateThenInsert(ctx, minutes, minutesNew, len(rows), args); err != nil {
				return err
			}
		}
		return nil
	})
}

// updateThenInsert runs update, a statement of n rows (args) that changes
// the rows there are, then, if it changed fewer than n, insert with the
// same args to make the missing ones. The rows are distinct (mergeUsage
// merges a key's, and a key, minute and code's): an UPDATE ... FROM
// would apply only one of two rows that match the same stored row.
func (t *Tx) updateThenInsert(ctx context.Context, update, insert *sql.Stmt, n int, args []any) error {
	res, err := t.execStmt(ctx, update, args...)
	if err != nil {
		return err
	}
	changed, err := res.RowsAffected()
	if err != nil {
		return mapErr(t.d, err)
	}
	if changed >= int64(n) {
		return nil
	}
	_, err = t.execStmt(ctx, insert, args...)
	return err
}

// recordUsagePG is RecordUsage's transaction on PostgreSQL: in ID order,
// chunk after chunk, so that the rows are locked in ID order across the
// whole batch. Its statements run in the transaction's context; the
// documents are made of text mergeUsage checked, and are not checked
// again (Tx.exec would scan each document).
func recordUsagePG(t *Tx, keys []latchkey.UsageUpdate, mins []minuteRow) error {
	ctx := t.ctx
	for start := 0; start < len(keys); start += usageStmtKeys {
		doc, err := encodeKeys(keys[start:min(start+usageStmtKeys, len(keys))])
		if err != nil {
			return err
		}
		for _, q := range [...]string{pgLockUsageSQL, pgUsageSQL} {
			if _, err := t.tx.ExecContext(ctx, t.q(q), doc); err != nil {
				return mapErr(t.d, err)
			}
		}
	}
	for start := 0; start < len(mins); start += usageStmtKeys {
		doc, err := encodeMinutes(mins[start:min(start+usageStmtKeys, len(mins))])
		if err != nil {
			return err
		}
		if _, err := t.tx.ExecContext(ctx, t.q(pgMinutesSQL), doc); err != nil {
			return mapErr(t.d, err)
		}
	}
	return nil
}

// minuteRow is one key's count of one decision code in one minute.
type minuteRow struct {
	id     string
	minute int64
	code   latchkey.Code
	count  int64
}

// mergeUsage sorts a batch by key ID, merges what it holds twice for one
// key (or one key, minute and code), and checks its text as every write
// does (valid UTF-8, no NUL), also of the updates merged away.
func mergeUsage(batch []latchkey.UsageUpdate) ([]latchkey.UsageUpdate, []minuteRow, error) {
	order := make([]int, len(batch))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(batch[a].AccessKeyID, batch[b].AccessKeyID) })
	var mins []minuteRow
	merged := make([]latchkey.UsageUpdate, 0, len(batch))
	for _, i := range order {
		u := batch[i]
		if err := checkUsageText(&u); err != nil {
			return nil, nil, err
		}
		for _, m := range u.Minutes {
			mins = append(mins, minuteRow{u.AccessKeyID, unixMinute(m.At), m.Code, m.Count})
		}
		if n := len(merged); n > 0 && merged[n-1].AccessKeyID == u.AccessKeyID {
			addUsage(&merged[n-1], &u)
			continue
		}
		merged = append(merged, u)
	}
	slices.SortStableFunc(mins, func(a, b minuteRow) int {
		if c := strings.Compare(a.id, b.id); c != 0 {
			return c
		}
		if a.minute != b.minute {
			return cmpInt(a.minute, b.minute)
		}
		return strings.Compare(string(a.code), string(b.code))
	})
	out := mins[:0]
	for _, m := range mins {
		if n := len(out); n > 0 && out[n-1].id == m.id && out[n-1].minute == m.minute && out[n-1].code == m.code {
			out[n-1].count += m.count
			continue
		}
		out = append(out, m)
	}
	return merged, out, nil
}

// encodeKeys encodes updates as the first array above.
func encodeKeys(us []latchkey.UsageUpdate) (string, error) {
	var err error
	b := make([]byte, 0, 160*len(us))
	b = append(b, '[')
	for i := range us {
		u := &us[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		if b, err = appendJSONString(b, u.AccessKeyID); err != nil {
			return "", err
		}
		for _, n := range [...]int64{u.Uses, u.Rejections, u.WouldDeny} {
			b = append(b, ',')
			b = strconv.AppendInt(b, n, 10)
		}
		var at int64
		var ip, ua string
		if r := u.LastUsed; r != nil {
			at, ip, ua = toMicros(r.At), r.IP, r.UserAgent
		}
		if b, err = appendEvent(b, u.LastUsed != nil, at, ip, ua); err != nil {
			return "", err
		}
		for _, r := range [...]*latchkey.Rejection{u.LastRejected, u.LastWouldDeny} {
			at, ip, ua, why := int64(0), "", "", ""
			if r != nil {
				at, ip, ua, why = toMicros(r.At), r.IP, r.UserAgent, string(r.Reason)
			}
			if b, err = appendEvent(b, r != nil, at, ip, ua); err != nil {
				return "", err
			}
			b = append(b, ',')
			if b, err = appendJSONString(b, why); err != nil {
				return "", err
			}
		}
		b = append(b, ']')
	}
	return string(append(b, ']')), nil
}

// splitPlainUsage splits merged updates (in ID order) into those with
// nothing but uses and a last use, and the rest, each in ID order.
func splitPlainUsage(us []latchkey.UsageUpdate) (plain, full []latchkey.UsageUpdate) {
	for _, u := range us {
		if u.Rejections == 0 && u.WouldDeny == 0 && u.LastRejected == nil && u.LastWouldDeny == nil {
			plain = append(plain, u)
		} else {
			full = append(full, u)
		}
	}
	return plain, full
}

// encodeMinutes encodes minute rows as the second array above.
func encodeMinutes(ms []minuteRow) (string, error) {
	var err error
	b := make([]byte, 0, 48*len(ms))
	b = append(b, '[')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		if b, err = appendJSONString(b, m.id); err != nil {
			return "", err
		}
		b = append(b, ',')
		b = strconv.AppendInt(b, m.minute, 10)
		b = append(b, ',')
		if b, err = appendJSONString(b, string(m.code)); err != nil {
			return "", err
		}
		b = append(b, ',')
		b = strconv.AppendInt(b, m.count, 10)
		b = append(b, ']')
	}
	return string(append(b, ']')), nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkUsageText refuses text no store can hold, as checkText does for
// every statement's arguments.
func checkUsageText(u *latchkey.UsageUpdate) error {
	var buf [12]string
	texts := append(buf[:0], u.AccessKeyID)
	if r := u.LastUsed; r != nil {
		texts = append(texts, r.IP, r.UserAgent)
	}
	for _, r := range [...]*latchkey.Rejection{u.LastRejected, u.LastWouldDeny} {
		if r != nil {
			texts = append(texts, r.IP, r.UserAgent, string(r.Reason))
		}
	}
	for _, m := range u.Minutes {
		texts = append(texts, string(m.Code))
	}
	for _, s := range texts {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return errText
		}
	}
	return nil
}

// addUsage adds o into u as two flushes of one key would land.
func addUsage(u, o *latchkey.UsageUpdate) {
	u.Uses += o.Uses
	u.Rejections += o.Rejections
	u.WouldDeny += o.WouldDeny
	if o.LastUsed != nil && (u.LastUsed == nil || o.LastUsed.At.After(u.LastUsed.At)) {
		u.LastUsed = o.LastUsed
	}
	if o.LastRejected != nil && (u.LastRejected == nil || o.LastRejected.At.After(u.LastRejected.At)) {
		u.LastRejected = o.LastRejected
	}
	if o.LastWouldDeny != nil && (u.LastWouldDeny == nil || o.LastWouldDeny.At.After(u.LastWouldDeny.At)) {
		u.LastWouldDeny = o.LastWouldDeny
	}
}

// appendEvent appends ",at,ip,ua", at as null when there is no event.
func appendEvent(b []byte, ok bool, at int64, ip, ua string) ([]byte, error) {
	b = append(b, ',')
	if ok {
		b = strconv.AppendInt(b, at, 10)
	} else {
		b = append(b, "null"...)
	}
	var err error
	b = append(b, ',')
	if b, err = appendJSONString(b, ip); err != nil {
		return b, err
	}
	b = append(b, ',')
	return appendJSONString(b, ua)
}

// appendJSONString appends s as a JSON string. s must be text every write
// accepts (checkText): valid UTF-8 without NUL.
func appendJSONString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return b, errText
	}
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"'), nil
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
