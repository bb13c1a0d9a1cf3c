package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/latchkey/latchkey"
)

const keyColumns = `k.id, k.account, COALESCE(k.application, ''), COALESCE(k.principal, ''), COALESCE(p.role, ''),
	k.secret_digest, k.description, k.status, k.created_at, k.updated_at, k.expires_at,
	ku.last_used_at, COALESCE(ku.last_used_ip, ''), COALESCE(ku.last_used_ua, ''),
	ku.last_rejected_at, COALESCE(ku.last_rejected_ip, ''), COALESCE(ku.last_rejected_ua, ''), COALESCE(ku.last_rejected_reason, ''),
	COALESCE(ku.use_count, 0), COALESCE(ku.reject_count, 0), k.exposed_at, k.exposed_where,
	k.restrictions, k.report_only, a.restrictions,
	ku.last_would_deny_at, COALESCE(ku.last_would_deny_ip, ''), COALESCE(ku.last_would_deny_ua, ''), COALESCE(ku.last_would_deny_reason, ''), COALESCE(ku.would_deny_count, 0),
	k.external_id, k.metadata, k.canary, k.public_key, k.cert_thumbprint,
	k.hash_format, k.salt, k.imported_from, k.original_id, k.imported_at,
	q.generation, q.budget, q.used, q.period, q.refill_amount, q.refill_interval, q.anchor, q.low_threshold, q.updated_at,
	a.metadata, i.id, i.account, i.external_id, i.metadata, i.rate_limit,
	iq.generation, iq.budget, iq.used, iq.period, iq.refill_amount, iq.refill_interval, iq.anchor, iq.low_threshold, iq.updated_at`

// keyFrom joins a key's usage (key_usage, a row only once the key has
// some) and what the key's row names.
const keyFrom = ` FROM access_keys k
	LEFT JOIN key_usage ku ON ku.access_key_id = k.id
	LEFT JOIN principals p ON p.account = k.account AND p.name = k.principal
	LEFT JOIN applications a ON a.account = k.account AND a.name = k.application
	LEFT JOIN quotas q ON q.owner_kind = 'access_key' AND q.owner_id = k.id
	LEFT JOIN identities i ON i.id = a.identity_id
	LEFT JOIN quotas iq ON iq.owner_kind = 'identity' AND iq.owner_id = a.identity_id`

// keyRow holds the scan targets of one key row. database/sql's Scan takes
// them as any, so each local variable would escape to the heap, with the
// slice of 63 pointers besides: one keyRow read through, row after row,
// makes a page of keys cost its keys and their strings, not some sixty
// allocations a row (a policy round reads every key in pages).
type keyRow struct {
	k                              latchkey.AccessKey
	digest                         []byte
	created, updated               int64
	expires, used, rejected, expos sql.NullInt64
	usedIP, usedUA                 string
	rejIP, rejUA, rejReason        string
	exposedWhere                   string
	restr, reportOnly, appRestr    sql.NullString
	wouldDeny                      sql.NullInt64
	wdIP, wdUA, wdReason           string
	externalID, metadata           sql.NullString
	canary                         int
	pub, cert                      sql.NullString
	imp                            importColumns
	q                              nullQuota
	appMeta                        sql.NullString
	ident                          identityColumnsScan
	dest                           []any
}

func newKeyRow() *keyRow {
	r := &keyRow{}
	k, q, ident := &r.k, &r.q, &r.ident
	r.dest = []any{&k.ID, &k.Account, &k.Application, &k.Principal, &k.Role,
		&r.digest, &k.Description, &k.Status, &r.created, &r.updated, &r.expires,
		&r.used, &r.usedIP, &r.usedUA,
		&r.rejected, &r.rejIP, &r.rejUA, &r.rejReason,
		&k.UseCount, &k.RejectCount, &r.expos, &r.exposedWhere,
		&r.restr, &r.reportOnly, &r.appRestr,
		&r.wouldDeny, &r.wdIP, &r.wdUA, &r.wdReason, &k.WouldDenyCount,
		&r.externalID, &r.metadata, &r.canary, &r.pub, &r.cert,
		&r.imp.format, &r.imp.salt, &r.imp.origin, &r.imp.originalID, &r.imp.at,
		&q.gen, &q.budget, &q.used, &q.period, &q.amount, &q.interval, &q.anchor, &q.low, &q.updated,
		&r.appMeta, &ident.id, &ident.account, &ident.externalID, &ident.metadata, &ident.rateLimit,
		&ident.q.gen, &ident.q.budget, &ident.q.used, &ident.q.period, &ident.q.amount, &ident.q.interval, &ident.q.anchor,
		&ident.q.low, &ident.q.updated}
	return r
}

// scanKey reads one key row (keyColumns).
func scanKey(s interface{ Scan(...any) error }) (*latchkey.AccessKey, error) {
	return newKeyRow().scan(s)
}

// scan reads the current row into a new key. Scan sets every target, and
// the key's fields that no column sets are cleared first, so nothing of
// the previous row stays.
func (r *keyRow) scan(s interface{ Scan(...any) error }) (*latchkey.AccessKey, error) {
	r.k = latchkey.AccessKey{}
	if err := s.Scan(r.dest...); err != nil {
		return nil, err
	}
	k := new(latchkey.AccessKey)
	*k = r.k
	if r.q.gen.Valid {
		q := &latchkey.Quota{Generation: r.q.gen.Int64, Budget: r.q.budget.Int64, Used: r.q.used.Int64, Period: r.q.period.Int64,
			Anchor: fromMicros(r.q.anchor.Int64), LowThreshold: r.q.low.Int64, UpdatedAt: fromMicros(r.q.updated.Int64)}
		if r.q.amount.Valid {
			q.Refill = &latchkey.Refill{Amount: r.q.amount.Int64, Interval: r.q.interval.String}
		}
		q.Present(nowFunc())
		k.Quota = q
	}
	if r.appMeta.Valid && r.appMeta.String != "" {
		k.AppMetadata = json.RawMessage(r.appMeta.String)
	}
	var err error
	if k.Identity, err = r.ident.keyIdentity(); err != nil {
		return nil, fmt.Errorf("access key %s: %w", k.ID, err)
	}
	if err := setIndexFields(k, r.digest, r.expires, r.restr, r.reportOnly, r.appRestr, r.externalID, r.metadata, r.pub); err != nil {
		return nil, err
	}
	r.imp.set(k)
	k.Canary = r.canary == 1
	k.CertThumbprint = r.cert.String
	if r.wouldDeny.Valid {
		k.LastWouldDeny = &latchkey.Rejection{At: fromMicros(r.wouldDeny.Int64), IP: r.wdIP, UserAgent: r.wdUA, Reason: latchkey.Code(r.wdReason)}
	}
	k.CreatedAt = fromMicros(r.created)
	k.UpdatedAt = fromMicros(r.updated)
	if r.used.Valid {
		k.LastUsed = &latchkey.Use{At: fromMicros(r.used.Int64), IP: r.usedIP, UserAgent: r.usedUA}
	}
	if r.rejected.Valid {
		k.LastRejected = &latchkey.Rejection{At: fromMicros(r.rejected.Int64), IP: r.rejIP, UserAgent: r.rejUA, Reason: latchkey.Code(r.rejReason)}
	}
	if r.expos.Valid {
		k.Exposed = &latchkey.Exposure{At: fromMicros(r.expos.Int64), Where: r.exposedWhere}
	}
	return k, nil
}

// setIndexFields decodes the columns ScanKeyIndex and scanKey share.
func setIndexFields(k *latchkey.AccessKey, digest []byte, expires sql.NullInt64, restr, reportOnly, appRestr, externalID, metadata, pub sql.NullString) error {
	var err error
	k.ExternalID = externalID.String
	if metadata.Valid && metadata.String != "" {
		if !json.Valid([]byte(metadata.String)) {
			return fmt.Errorf("access key %s: metadata is not JSON", k.ID)
		}
		k.Metadata = json.RawMessage(metadata.String)
	}
	k.KeyType = latchkey.KeyTypeBearer
	if pub.Valid {
		if k.PublicKey, err = latchkey.ParsePublicKey(pub.String); err != nil {
			return fmt.Errorf("access key %s: public key: %w", k.ID, err)
		}
		k.KeyType = latchkey.KeyTypeSigning
	}
	if k.Restrictions, err = unmarshalRestrictions(restr); err != nil {
		return fmt.Errorf("access key %s: restrictions: %w", k.ID, err)
	}
	if k.ReportOnly, err = unmarshalRestrictions(reportOnly); err != nil {
		return fmt.Errorf("access key %s: report-only restrictions: %w", k.ID, err)
	}
	if k.AppRestrictions, err = unmarshalRestrictions(appRestr); err != nil {
		return fmt.Errorf("access key %s: application restrictions: %w", k.ID, err)
	}
	if len(digest) != len(k.SecretDigest) {
		return fmt.Errorf("access key %s: stored digest has %d bytes", k.ID, len(digest))
	}
	copy(k.SecretDigest[:], digest)
	k.ExpiresAt = timePtr(expires)
	return nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// importColumns are an imported key's columns, all NULL for a native key.
type importColumns struct {
	format, origin, originalID sql.NullString
	salt                       []byte
	at                         sql.NullInt64
}

func (c *importColumns) set(k *latchkey.AccessKey) {
	if !c.format.Valid {
		return
	}
	k.Imported = &latchkey.Import{Origin: c.origin.String, OriginalID: c.originalID.String,
		HashFormat: latchkey.HashFormat(c.format.String)}
	if c.at.Valid {
		k.Imported.ImportedAt = fromMicros(c.at.Int64)
	}
	if len(c.salt) > 0 {
		k.Salt = c.salt
	}
}

// importValues are the values of importColumns for k.
func importValues(k *latchkey.AccessKey) (format, origin, originalID sql.NullString, salt []byte, at sql.NullInt64) {
	if k.Imported == nil {
		return
	}
	im := k.Imported
	return sql.NullString{String: string(im.HashFormat), Valid: true}, sql.NullString{String: im.Origin, Valid: true},
		nullString(im.OriginalID), k.Salt, sql.NullInt64{Int64: toMicros(im.ImportedAt), Valid: true}
}

// CreateAccessKey implements latchkey.Tx.
func (t *Tx) CreateAccessKey(ctx context.Context, k *latchkey.AccessKey) error {
	if err := t.accountExists(ctx, k.Account); err != nil {
		return err
	}
	var exposedAt sql.NullInt64
	exposedWhere := ""
	if k.Exposed != nil {
		exposedAt = sql.NullInt64{Int64: toMicros(k.Exposed.At), Valid: true}
		// Written back on every update: a note stored before free text was
		// cleaned (SQLite kept NUL bytes) must not make the key unchangeable.
		exposedWhere = latchkey.CleanText(k.Exposed.Where, 3*len(k.Exposed.Where)) // cleaned, not cut
	}
	restr, err := marshalRestrictions(k.Restrictions)
	if err != nil {
		return err
	}
	reportOnly, err := marshalRestrictions(k.ReportOnly)
	if err != nil {
		return err
	}
	format, origin, originalID, salt, importedAt := importValues(k)
	var lastUsed sql.NullInt64
	if k.LastUsed != nil { // an imported key's last use in its system
		lastUsed = sql.NullInt64{Int64: toMicros(k.LastUsed.At), Valid: true}
	}
	_, err = t.exec(ctx, `INSERT INTO access_keys
		(id, account, application, principal, secret_digest, description, status, created_at, updated_at, expires_at, exposed_at, exposed_where,
		 restrictions, report_only, external_id, metadata, canary, public_key, cert_thumbprint,
		 hash_format, salt, imported_from, original_id, imported_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Account, nullString(k.Application), nullString(k.Principal), k.SecretDigest[:], k.Description,
		string(k.Status), toMicros(k.CreatedAt), toMicros(k.UpdatedAt), nullMicros(k.ExpiresAt), exposedAt, exposedWhere,
		restr, reportOnly, nullString(k.ExternalID), nullString(string(k.Metadata)), boolInt(k.Canary), publicKeyPEM(k.PublicKey), nullString(k.CertThumbprint),
		format, salt, origin, originalID, importedAt)
	if err == nil && lastUsed.Valid {
		_, err = t.exec(ctx, `INSERT INTO key_usage (access_key_id, last_used_at) VALUES (?, ?)`, k.ID, lastUsed)
	}
	switch latchkey.ErrorCode(err) {
	case latchkey.EEXISTS:
		return latchkey.Errorf(latchkey.EEXISTS, "an access key with this ID or secret already exists")
	case latchkey.ENOTFOUND:
		return latchkey.Errorf(latchkey.ENOTFOUND, "%s not found", k.Owner())
	case latchkey.EINVALID:
		return latchkey.Errorf(latchkey.EINVALID, "access key %s must belong to exactly one application or principal", k.ID)
	}
	return err
}

// publicKeyPEM is the public_key column's value: NULL for a bearer key.
func publicKeyPEM(p *latchkey.PublicKey) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: p.PEM, Valid: true}
}

// FindAccessKey implements latchkey.Tx.
func (t *Tx) FindAccessKey(ctx context.Context, id string) (*latchkey.AccessKey, error) {
	lock := ""
	if t.writable && t.d.ForUpdate != "" {
		lock = " " + t.d.ForUpdate + " OF k"
	}
	row := t.queryRow(ctx, `SELECT `+keyColumns+keyFrom+` WHERE k.id = ?`+lock, id)
	k, err := scanKey(row)
	if err != nil {
		return nil, notFound(t.d, err, latchkey.Errorf(latchkey.ENOTFOUND, "access key %s not found", id))
	}
	return k, nil
}

// ReadAccessKey reads key id with a single statement on conn, outside any
// transaction: one round trip instead of a transaction's three, on a
// connection the caller may keep for it alone. A change feed uses it to
// re-read a notified key without waiting behind the store's other users.
// Returns ENOTFOUND if the key does not exist.
func (db *DB) ReadAccessKey(ctx context.Context, conn *sql.DB, id string) (*latchkey.AccessKey, error) {
	if err := checkText([]any{id}); err != nil {
		return nil, err
	}
	ctx, cancel := db.Bound(ctx)
	defer cancel()
	row := conn.QueryRowContext(ctx, rebind(&db.Dialect, `SELECT `+keyColumns+keyFrom+` WHERE k.id = ?`), id)
	k, err := scanKey(row)
	if err != nil {
		return nil, notFound(&db.Dialect, err, latchkey.Errorf(latchkey.ENOTFOUND, "access key %s not found", id))
	}
	return k, nil
}

// ListAccessKeys implements latchkey.Tx.
func (t *Tx) ListAccessKeys(ctx context.Context, f latchkey.AccessKeyFilter) ([]*latchkey.AccessKey, string, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.Account != "" {
		add("k.account = ?", f.Account)
	}
	if f.Application != "" {
		add("k.application = ?", f.Application)
	}
	if f.Principal != "" {
		add("k.principal = ?", f.Principal)
	}
	if f.ExternalID != "" {
		add("k.external_id = ?", f.ExternalID)
	}
	switch f.Kind {
	case "application":
		add("k.application IS NOT NULL")
	case "principal":
		add("k.principal IS NOT NULL")
	}
	if f.NoCanaries {
		add("k.canary = 0")
	}
	if c := f.Policy; c != nil {
		cond, a := policyCandidates(c)
		add(cond, a...)
	}
	if f.After != "" {
		created, id, ok := parseKeyToken(f.After)
		if !ok {
			return nil, "", latchkey.Errorf(latchkey.EINVALID, "page_token is not valid")
		}
		// A row value, which both databases answer with a seek on the
		// (created_at, id) index; the equivalent OR of two conditions
		// made SQLite scan every key before the page again, for each page.
		add("(k.created_at, k.id) > (?, ?)", created, id)
	}
	query := `SELECT ` + keyColumns + keyFrom
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	limit := pageSize(f.Limit)
	query += " ORDER BY k.created_at, k.id LIMIT ?"
	args = append(args, limit+1)
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []*latchkey.AccessKey
	row := newKeyRow()
	for rows.Next() {
		k, err := row.scan(rows)
		if err != nil {
			return nil, "", mapErr(t.d, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, "", mapErr(t.d, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%s", toMicros(last.CreatedAt), last.ID))
	}
	return out, next, nil
}

// policyCandidates is the condition that selects the keys c does, with
// its arguments.
func policyCandidates(c *latchkey.PolicyCandidates) (string, []any) {
	var (
		or   []string
		args []any
	)
	if c.NotActive {
		or = append(or, "k.status <> ?")
		args = append(args, string(latchkey.StatusActive))
	}
	if !c.ExpiresBefore.IsZero() {
		or = append(or, "(k.expires_at IS NOT NULL AND k.expires_at <= ?)")
		args = append(args, toMicros(c.ExpiresBefore))
	}
	if !c.CreatedBefore.IsZero() {
		or = append(or, "k.created_at <= ?")
		args = append(args, toMicros(c.CreatedBefore))
	}
	if !c.IdleBefore.IsZero() {
		t := toMicros(c.IdleBefore)
		or = append(or, "(k.created_at <= ? AND (ku.last_used_at IS NULL OR ku.last_used_at <= ?))")
		args = append(args, t, t)
	}
	if len(or) == 0 {
		return "1 = 0", nil
	}
	return "(" + strings.Join(or, " OR ") + ")", args
}

func parseKeyToken(tok string) (int64, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, "", false
	}
	ts, id, ok := strings.Cut(string(b), ".")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return n, id, true
}

// UpdateAccessKey implements latchkey.Tx.
func (t *Tx) UpdateAccessKey(ctx context.Context, k *latchkey.AccessKey) error {
	var exposedAt sql.NullInt64
	exposedWhere := ""
	if k.Exposed != nil {
		exposedAt = sql.NullInt64{Int64: toMicros(k.Exposed.At), Valid: true}
		// Written back on every update: a note stored before free text was
		// cleaned (SQLite kept NUL bytes) must not make the key unchangeable.
		exposedWhere = latchkey.CleanText(k.Exposed.Where, 3*len(k.Exposed.Where)) // cleaned, not cut
	}
	restr, err := marshalRestrictions(k.Restrictions)
	if err != nil {
		return err
	}
	reportOnly, err := marshalRestrictions(k.ReportOnly)
	if err != nil {
		return err
	}
	res, err := t.exec(ctx, `UPDATE access_keys SET status = ?, description = ?, expires_at = ?, updated_at = ?,
		exposed_at = ?, exposed_where = ?, restrictions = ?, report_only = ?, external_id = ?, metadata = ?,
		cert_thumbprint = ? WHERE id = ?`,
		string(k.Status), k.Description, nullMicros(k.ExpiresAt), toMicros(k.UpdatedAt), exposedAt, exposedWhere,
		restr, reportOnly, nullString(k.ExternalID), nullString(string(k.Metadata)), nullString(k.CertThumbprint), k.ID)
	if err != nil {
		return err
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "access key %s not found", k.ID))
}

// DeleteAccessKey implements latchkey.Tx.
func (t *Tx) DeleteAccessKey(ctx context.Context, id string) error {
	res, err := t.exec(ctx, `DELETE FROM access_keys WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if err := t.deleteQuotaOf(ctx, latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerKey, ID: id}); err != nil {
		return err
	}
	for _, table := range []string{"usage_minutes", "usage_hours"} {
		if _, err := t.exec(ctx, `DELETE FROM `+table+` WHERE access_key_id = ?`, id); err != nil {
			return err
		}
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "access key %s not found", id))
}

// ScanAccessKeys calls fn for every access key, in no particular order.
func (db *DB) ScanAccessKeys(ctx context.Context, fn func(*latchkey.AccessKey) error) error {
	rows, err := db.Read.QueryContext(ctx, `SELECT `+keyColumns+keyFrom)
	if err != nil {
		return db.Err(err)
	}
	defer rows.Close()
	row := newKeyRow()
	for rows.Next() {
		k, err := row.scan(rows)
		if err != nil {
			return db.Err(err)
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return db.Err(rows.Err())
}

// ScanKeyIndex implements latchkey.Store. Principals' roles and
// applications' restrictions are few beside keys: they are read first,
// and the keys then without a join, each application's restrictions
// decoded once and shared by its keys. The three reads are not one
// snapshot; the index's resync lets changes that arrive meanwhile win.
func (db *DB) ScanKeyIndex(ctx context.Context, fn func(*latchkey.AccessKey) error) error {
	return db.ScanKeyIndexInto(ctx, nil, fn)
}

// ScanKeyIndexInto is ScanKeyIndex decoding each key into the value next
// returns (zeroed first), so that a caller that is done with a key before
// it asks for another value can recycle them: an index load then makes no
// AccessKey per row. The values a key points to (strings, restrictions,
// the public key, metadata, the salt) are new for each row and never
// written through afterwards, so the caller may keep them after it
// recycles the AccessKey. A nil next allocates a new AccessKey per row.
func (db *DB) ScanKeyIndexInto(ctx context.Context, next func() *latchkey.AccessKey, fn func(*latchkey.AccessKey) error) error {
	kd, err := db.keyDecoder(ctx)
	if err != nil {
		return err
	}
	var row keyIndexRow
	decode := func(scan func(dest ...any) error) error {
		var k *latchkey.AccessKey
		if next != nil {
			k = next()
			*k = latchkey.AccessKey{}
		} else {
			k = new(latchkey.AccessKey)
		}
		if err := kd.decode(&row, scan, k); err != nil {
			return err
		}
		return fn(k)
	}
	if db.ScanKeyRows != nil {
		// decode's errors are returned as they are, as scanRows does;
		// the driver's are mapped.
		row.native = true
		var stopped error
		err := db.ScanKeyRows(ctx, keyIndexQuery, func(scan func(dest ...any) error) error {
			stopped = decode(scan)
			return stopped
		})
		if err != nil && err != stopped {
			return db.Err(err)
		}
		return err
	}
	return db.scanRows(ctx, keyIndexQuery, func(rows *sql.Rows) error { return decode(rows.Scan) })
}

// KeyIndexParts reports whether ScanKeyIndexParts reads in parallel: the
// store has ScanKeyParts.
func (db *DB) KeyIndexParts() bool { return db.ScanKeyParts != nil }

// KeyCountEstimate is EstimateKeys' figure, or 0 when the store has no
// way to estimate.
func (db *DB) KeyCountEstimate(ctx context.Context) (int, error) {
	if db.EstimateKeys == nil {
		return 0, nil
	}
	return db.EstimateKeys(ctx)
}

// ScanKeyIndexParts is ScanKeyIndexInto reading the key rows in parts
// parts at once (ScanKeyParts), on a goroutine each: next(part) and
// fn(part, k) are called from part's goroutine, so calls for different
// parts run concurrently, calls for one part one after another. One part
// (parts below 2) still reads through ScanKeyParts, whose reader may be
// faster than the driver's (SQLite's is). Without ScanKeyParts it is
// ScanKeyIndexInto, every key in part 0.
func (db *DB) ScanKeyIndexParts(ctx context.Context, parts int, next func(part int) *latchkey.AccessKey, fn func(part int, k *latchkey.AccessKey) error) error {
	if db.ScanKeyParts == nil {
		return db.ScanKeyIndexInto(ctx, func() *latchkey.AccessKey { return next(0) }, func(k *latchkey.AccessKey) error { return fn(0, k) })
	}
	parts = max(parts, 1)
	kd, err := db.keyDecoder(ctx)
	if err != nil {
		return err
	}
	rows := make([]keyIndexRow, parts)
	for i := range rows {
		rows[i].native = true
	}
	var mu sync.Mutex
	var stopped []error
	err = db.ScanKeyParts(ctx, keyIndexQuery, parts, func(part int, scan func(dest ...any) error) error {
		k := next(part)
		*k = latchkey.AccessKey{}
		err := kd.decode(&rows[part], scan, k)
		if err == nil {
			err = fn(part, k)
		}
		if err != nil {
			mu.Lock()
			stopped = append(stopped, err)
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range stopped {
			if err == s {
				return err
			}
		}
		return db.Err(err)
	}
	return nil
}

// keyDecoder reads what a key takes from other tables (principals'
// roles, owners' quotas, identities, applications' restrictions and
// metadata) for a scan of the key rows. Principals' roles and
// applications' restrictions are few beside keys: they are read first,
// and the keys then without a join, each application's restrictions
// decoded once and shared by its keys.
func (db *DB) keyDecoder(ctx context.Context) (*keyDecoder, error) {
	kd := &keyDecoder{db: db, roles: map[keyOwner]latchkey.Role{}, apps: map[keyOwner]*appInfo{}}
	err := db.scanRows(ctx, `SELECT account, name, role FROM principals`, func(rows *sql.Rows) error {
		var n keyOwner
		var role latchkey.Role
		if err := rows.Scan(&n.account, &n.name, &role); err != nil {
			return db.Err(err)
		}
		kd.roles[n] = role
		return nil
	})
	if err != nil {
		return nil, err
	}
	if kd.quotas, err = db.ownerQuotas(ctx, latchkey.QuotaOwnerKey); err != nil {
		return nil, err
	}
	identities, err := db.keyIdentities(ctx)
	if err != nil {
		return nil, err
	}
	err = db.scanRows(ctx, `SELECT account, name, restrictions, metadata, identity_id FROM applications
		WHERE restrictions IS NOT NULL OR metadata IS NOT NULL OR identity_id IS NOT NULL`, func(rows *sql.Rows) error {
		var n keyOwner
		var restr, meta, ident sql.NullString
		if err := rows.Scan(&n.account, &n.name, &restr, &meta, &ident); err != nil {
			return db.Err(err)
		}
		r, err := unmarshalRestrictions(restr)
		if err != nil {
			return latchkey.Internal(fmt.Errorf("application %s/%s: restrictions: %w", n.account, n.name, err))
		}
		ai := &appInfo{restr: r, identity: identities[ident.String]}
		if meta.Valid && meta.String != "" {
			ai.metadata = json.RawMessage(meta.String)
		}
		kd.apps[n] = ai
		return nil
	})
	if err != nil {
		return nil, err
	}
	return kd, nil
}

// keyOwner is an account's principal or application, by name.
type keyOwner struct{ account, name string }

// appInfo is what a key takes from its application: restrictions,
// metadata and identity, for the applications that have any.
type appInfo struct {
	restr    *latchkey.Restrictions
	metadata json.RawMessage
	identity *latchkey.KeyIdentity
}

// keyDecoder decodes key rows with what keyDecoder read. It is only read
// once made, so the parts of a parallel scan share one.
type keyDecoder struct {
	db     *DB
	roles  map[keyOwner]latchkey.Role
	quotas map[string]*latchkey.Quota
	apps   map[keyOwner]*appInfo
}

// decode scans one key row into k (zeroed) with row's destinations.
func (kd *keyDecoder) decode(row *keyIndexRow, scan func(dest ...any) error, k *latchkey.AccessKey) error {
	if err := row.scan(scan, k); err != nil {
		return kd.db.Err(err)
	}
	if err := row.decode(k); err != nil {
		return latchkey.Internal(err)
	}
	k.Quota = kd.quotas[k.ID]
	if k.Principal != "" {
		k.Role = kd.roles[keyOwner{k.Account, k.Principal}]
	} else if ai := kd.apps[keyOwner{k.Account, k.Application}]; ai != nil {
		k.AppRestrictions, k.AppMetadata, k.Identity = ai.restr, ai.metadata, ai.identity
	}
	return nil
}

// keyIndexQuery reads the access_keys columns ScanKeyIndex decodes, in
// keyIndexRow.scan's order.
const keyIndexQuery = `SELECT id, account, COALESCE(application, ''), COALESCE(principal, ''),
		secret_digest, status, expires_at, restrictions, report_only, external_id, metadata, canary, public_key,
		cert_thumbprint, hash_format, salt FROM access_keys`

// keyIndexRow holds the scan destinations of one keyIndexQuery row. A
// scan reuses one for every row: Scan's destinations escape to the heap,
// so declared per row they were a dozen allocations a key. The digest is
// read as sql.RawBytes (the driver's own bytes, valid until the next row)
// and copied into the key's array; every other column ends up in a value
// of the key's own (strings, a new salt slice), so nothing of a row is
// shared with the next.
type keyIndexRow struct {
	native                 bool // scan is ScanKeyRows', which takes no sql.RawBytes
	id, account, app, prin string
	status                 string
	digest                 sql.RawBytes
	digestCopy             []byte
	expires                sql.NullInt64
	restr, reportOnly, pub sql.NullString
	cert                   sql.NullString
	externalID, metadata   sql.NullString
	canary                 int64
	imp                    importColumns
	// dest holds the addresses of the fields above in the query's order,
	// made on the first row: a slice built per call to a scan function
	// escapes to the heap, 256 bytes a key of an index load's garbage.
	dest []any
}

func (r *keyIndexRow) scan(scan func(dest ...any) error, k *latchkey.AccessKey) error {
	if r.dest == nil {
		var digest any = &r.digest
		if r.native {
			digest = &r.digestCopy
		}
		r.dest = []any{&r.id, &r.account, &r.app, &r.prin,
			digest, &r.status, &r.expires, &r.restr, &r.reportOnly, &r.externalID, &r.metadata, &r.canary, &r.pub,
			&r.cert, &r.imp.format, &r.imp.salt}
	}
	r.imp = importColumns{}
	if err := scan(r.dest...); err != nil {
		return err
	}
	k.ID, k.Account, k.Application, k.Principal = r.id, r.account, r.app, r.prin
	if r.native {
		r.digest = r.digestCopy
	}
	return nil
}

func (r *keyIndexRow) decode(k *latchkey.AccessKey) error {
	k.Status = latchkey.Status(r.status)
	r.imp.set(k)
	k.Canary = r.canary == 1
	k.CertThumbprint = r.cert.String
	return setIndexFields(k, r.digest, r.expires, r.restr, r.reportOnly, sql.NullString{}, r.externalID, r.metadata, r.pub)
}

// scanRows runs a query on the read pool and calls fn for each row; fn's
// error stops the scan and is returned as it is.
func (db *DB) scanRows(ctx context.Context, query string, fn func(*sql.Rows) error) error {
	rows, err := db.Read.QueryContext(ctx, query)
	if err != nil {
		return db.Err(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return db.Err(rows.Err())
}

func marshalRestrictions(r *latchkey.Restrictions) (sql.NullString, error) {
	if r.Empty() {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return sql.NullString{}, latchkey.Internal(err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

func unmarshalRestrictions(s sql.NullString) (*latchkey.Restrictions, error) {
	if !s.Valid || s.String == "" {
		return nil, nil
	}
	var r latchkey.Restrictions
	if err := json.Unmarshal([]byte(s.String), &r); err != nil {
		return nil, err
	}
	return &r, nil
}
