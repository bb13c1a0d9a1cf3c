package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/hashformat"
	"github.com/redis/go-redis/v9"
)

// Import sources: what --from accepts (docs/import.md describes each).
const (
	fromCSV       = "csv"
	fromTykRedis  = "tyk-redis"
	fromTykExport = "tyk-export"
	fromUnkey     = "unkey"
)

var importSources = []string{fromCSV, fromTykRedis, fromTykExport, fromUnkey}

// sourceRow is one key read from a source; bad says why it cannot be sent
// (the row is then reported invalid without asking the server).
type sourceRow struct {
	key latchkey.ImportKey
	bad string
}

// importSource reads keys one by one.
type importSource interface {
	// Next returns the next row, or io.EOF after the last.
	Next(ctx context.Context) (sourceRow, error)
	// Progress says how far the source has been read, in its own unit
	// (bytes of a file, keys of Redis); total is 0 when unknown.
	Progress() (done, total int64)
	Close() error
}

// countingReader counts the bytes read through it, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fileSource is the part every file source shares.
type fileSource struct {
	f     *os.File
	cr    *countingReader
	total int64
}

func openFileSource(path string) (*fileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileSource{f: f, cr: &countingReader{r: f}, total: st.Size()}, nil
}

func (s *fileSource) Progress() (int64, int64) { return s.cr.n, s.total }
func (s *fileSource) Close() error             { return s.f.Close() }

// csvColumns are the columns a CSV file may have; its first line names
// the ones it uses, in any order.
var csvColumns = []string{"id", "secret", "digest", "hash_format", "salt", "external_id", "metadata",
	"description", "status", "created_at", "last_used_at", "expires_at"}

// csvSource reads a CSV file with a header line. A digest without a
// hash_format column takes --hash-format.
type csvSource struct {
	*fileSource
	r      *csv.Reader
	cols   []string
	format string
	row    int
}

func openCSV(path, format string) (importSource, error) {
	fs, err := openFileSource(path)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bufio.NewReaderSize(fs.cr, 1<<20))
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		fs.Close()
		return nil, fmt.Errorf("%s: reading the header line: %w", path, err)
	}
	cols := make([]string, len(head))
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(csvColumns, h) {
			fs.Close()
			return nil, UsageErrorf("--file %s: unknown column %q; the columns are %s", path, h, strings.Join(csvColumns, ", "))
		}
		cols[i] = h
	}
	if !slices.Contains(cols, "secret") && !slices.Contains(cols, "digest") {
		fs.Close()
		return nil, UsageErrorf("--file %s: the header names neither a secret nor a digest column", path)
	}
	return &csvSource{fileSource: fs, r: r, cols: cols, format: format}, nil
}

func (s *csvSource) Next(context.Context) (sourceRow, error) {
	rec, err := s.r.Read()
	if err == io.EOF {
		return sourceRow{}, io.EOF
	}
	s.row++
	out := sourceRow{key: latchkey.ImportKey{Row: s.row}}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// the reason names the line, never its content
			out.bad = fmt.Sprintf("line %d is not CSV: %v", pe.Line, pe.Err)
			return out, nil
		}
		return out, err
	}
	if len(rec) != len(s.cols) {
		out.bad = fmt.Sprintf("%d fields, the header has %d", len(rec), len(s.cols))
		return out, nil
	}
	k := &out.key
	for i, v := range rec {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		switch s.cols[i] {
		case "id":
			k.ID = v
		case "secret":
			k.Secret = v
		case "digest":
			k.Digest = v
		case "hash_format":
			k.Format = v
		case "salt":
			k.Salt = v
		case "external_id":
			k.ExternalID = v
		case "metadata":
			k.Metadata = json.RawMessage(v)
		case "description":
			k.Description = v
		case "status":
			k.Status = latchkey.Status(v)
		case "created_at", "last_used_at", "expires_at":
			t, err := parseImportTime(v)
			if err != nil {
				out.bad = fmt.Sprintf("%s: %v", s.cols[i], err)
				return out, nil
			}
			switch s.cols[i] {
			case "created_at":
				k.CreatedAt = t
			case "last_used_at":
				k.LastUsedAt = t
			default:
				k.ExpiresAt = t
			}
		}
	}
	if k.Digest != "" && k.Format == "" {
		k.Format = s.format
	}
	return out, nil
}

// parseImportTime reads RFC 3339 or Unix seconds (or milliseconds, when
// the number is too large for seconds).
func parseImportTime(v string) (*time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return nil, nil
		}
		return unixTime(n), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, errors.New("not an RFC 3339 time or Unix seconds")
	}
	return &t, nil
}

// unixTime reads n as Unix seconds, or milliseconds past the year 5138.
func unixTime(n int64) *time.Time {
	var t time.Time
	if n > 1e11 {
		t = time.UnixMilli(n).UTC()
	} else {
		t = time.Unix(n, 0).UTC()
	}
	return &t
}

// tykSession is the part of Tyk's session object (user.SessionState, the
// JSON value of each apikey-<hash> key in Redis) that an import keeps.
type tykSession struct {
	OrgID       string         `json:"org_id"`
	Alias       string         `json:"alias"`
	MetaData    map[string]any `json:"meta_data"`
	IsInactive  bool           `json:"is_inactive"`
	Expires     int64          `json:"expires"`
	DateCreated string         `json:"date_created"`
}

// tykRow turns one Redis key of Tyk's (prefix + digest, or + the raw key
// when Tyk runs with hash_keys off) and its session into a row.
func tykRow(row int, redisKey, prefix string, hashed bool, session []byte) sourceRow {
	out := sourceRow{key: latchkey.ImportKey{Row: row}}
	k := &out.key
	name, ok := strings.CutPrefix(redisKey, prefix)
	if !ok || name == "" {
		out.bad = fmt.Sprintf("Redis key does not start with %q", prefix)
		return out
	}
	if hashed {
		in, ok := hashformat.TykInput(name)
		if !ok {
			out.bad = "not a Tyk key digest (8, 16, 32 or 64 hex digits); with hash_keys off, use --tyk-hash-keys=false"
			return out
		}
		k.Digest, k.Format = name, in
	} else {
		k.Secret = name
	}
	var s tykSession
	if err := json.Unmarshal(session, &s); err != nil {
		out.bad = "the session is not Tyk's session JSON"
		return out
	}
	extra := map[string]any{}
	if s.OrgID != "" {
		extra["tyk_org_id"] = s.OrgID
	}
	if k.Metadata, out.bad = mergeMetadata(s.MetaData, extra); out.bad != "" {
		return out
	}
	// Tyk's alias names the key's owner in analytics: the external ID
	// when it fits, else the description.
	if latchkey.ValidateExternalID(s.Alias) == nil {
		k.ExternalID = s.Alias
	} else {
		k.Description = latchkey.CleanText("Tyk alias "+s.Alias, latchkey.MaxDescriptionLen)
	}
	if s.IsInactive {
		k.Status = latchkey.StatusInactive
	}
	if s.Expires > 0 {
		k.ExpiresAt = unixTime(s.Expires)
	}
	if s.DateCreated != "" {
		if t, err := time.Parse(time.RFC3339Nano, s.DateCreated); err == nil && t.Year() > 1 {
			t = t.UTC()
			k.CreatedAt = &t
		}
	}
	return out
}

// tykRedisSource reads Tyk's keys from its Redis with SCAN and MGET.
type tykRedisSource struct {
	rdb     *redis.Client
	prefix  string
	hashed  bool
	cursor  uint64
	started bool
	page    []sourceRow
	row     int
	seen    int64
	total   int64
}

func openTykRedis(ctx context.Context, url, prefix string, hashed bool) (importSource, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, UsageErrorf("--redis-url: %v (e.g. redis://127.0.0.1:6379/0)", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("tyk-redis: cannot reach Redis: %w", err)
	}
	total, _ := rdb.DBSize(ctx).Result() // an upper bound, for progress
	return &tykRedisSource{rdb: rdb, prefix: prefix, hashed: hashed, total: total}, nil
}

func (s *tykRedisSource) Next(ctx context.Context) (sourceRow, error) {
	for len(s.page) == 0 {
		if s.started && s.cursor == 0 {
			return sourceRow{}, io.EOF
		}
		s.started = true
		keys, next, err := s.rdb.Scan(ctx, s.cursor, s.prefix+"*", 1000).Result()
		if err != nil {
			return sourceRow{}, fmt.Errorf("tyk-redis: SCAN: %w", err)
		}
		s.cursor = next
		s.seen += int64(len(keys))
		if len(keys) == 0 {
			continue
		}
		slices.Sort(keys) // SCAN may return a key twice; sorted, a repeat is next to it
		keys = slices.Compact(keys)
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return sourceRow{}, fmt.Errorf("tyk-redis: MGET: %w", err)
		}
		for i, key := range keys {
			v, ok := vals[i].(string)
			if !ok {
				continue // expired or deleted since SCAN
			}
			s.row++
			s.page = append(s.page, tykRow(s.row, key, s.prefix, s.hashed, []byte(v)))
		}
	}
	r := s.page[0]
	s.page = s.page[1:]
	return r, nil
}

func (s *tykRedisSource) Progress() (int64, int64) { return s.seen, max(s.total, s.seen) }
func (s *tykRedisSource) Close() error             { return s.rdb.Close() }

// tykExportSource reads JSON lines of {"key": "apikey-<hash>", "session":
// {...}}: Tyk's Redis written out (docs/import.md shows the redis-cli loop).
type tykExportSource struct {
	*fileSource
	dec    *json.Decoder
	prefix string
	hashed bool
	row    int
}

func openTykExport(path, prefix string, hashed bool) (importSource, error) {
	fs, err := openFileSource(path)
	if err != nil {
		return nil, err
	}
	return &tykExportSource{fileSource: fs, dec: json.NewDecoder(bufio.NewReaderSize(fs.cr, 1<<20)), prefix: prefix, hashed: hashed}, nil
}

func (s *tykExportSource) Next(context.Context) (sourceRow, error) {
	var line struct {
		Key     string          `json:"key"`
		Session json.RawMessage `json:"session"`
	}
	if !s.dec.More() {
		return sourceRow{}, io.EOF
	}
	s.row++
	if err := s.dec.Decode(&line); err != nil {
		return sourceRow{}, fmt.Errorf("tyk-export: row %d is not a JSON object: %w", s.row, err)
	}
	return tykRow(s.row, line.Key, s.prefix, s.hashed, line.Session), nil
}

// unkeyKey is a key as Unkey's API and database describe it: hash is the
// base64 SHA-256 of the key (a string, or {"value", "variant"} as its
// migration API takes it), times are Unix milliseconds.
type unkeyKey struct {
	ID         string          `json:"id"`
	Hash       json.RawMessage `json:"hash"`
	Key        string          `json:"key"` // plaintext, when the export has it
	Prefix     string          `json:"prefix"`
	Start      string          `json:"start"`
	Name       string          `json:"name"`
	OwnerID    string          `json:"ownerId"`
	ExternalID string          `json:"externalId"`
	Identity   *struct {
		ExternalID string `json:"externalId"`
	} `json:"identity"`
	Meta       map[string]any `json:"meta"`
	Remaining  *int64         `json:"remaining"`
	CreatedAt  int64          `json:"createdAt"`
	Expires    int64          `json:"expires"`
	LastUsedAt int64          `json:"lastUsedAt"`
	Enabled    *bool          `json:"enabled"`
}

// unkeySource reads an Unkey export: a JSON array of keys, an object with
// a "keys" array (a listKeys answer), or JSON lines of keys.
type unkeySource struct {
	*fileSource
	dec     *json.Decoder
	inArray bool
	pending []unkeyKey
	row     int
}

func openUnkey(path string) (importSource, error) {
	fs, err := openFileSource(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(fs.cr, 1<<20)
	s := &unkeySource{fileSource: fs}
	first, err := peekNonSpace(br)
	if err != nil && err != io.EOF {
		fs.Close()
		return nil, err
	}
	s.dec = json.NewDecoder(br)
	if first == '[' {
		if _, err := s.dec.Token(); err != nil {
			fs.Close()
			return nil, err
		}
		s.inArray = true
	}
	return s, nil
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n', 0xef, 0xbb, 0xbf: // white space, a UTF-8 byte order mark
		default:
			return b[0], nil
		}
		if _, err := br.ReadByte(); err != nil {
			return 0, err
		}
	}
}

func (s *unkeySource) Next(context.Context) (sourceRow, error) {
	for len(s.pending) == 0 {
		if !s.dec.More() {
			return sourceRow{}, io.EOF
		}
		var raw json.RawMessage
		if err := s.dec.Decode(&raw); err != nil {
			return sourceRow{}, fmt.Errorf("unkey: key %d is not JSON: %w", s.row+1, err)
		}
		var list struct {
			Keys []unkeyKey `json:"keys"`
			Data []unkeyKey `json:"data"`
		}
		if err := json.Unmarshal(raw, &list); err == nil && (list.Keys != nil || list.Data != nil) {
			s.pending = append(append(s.pending, list.Keys...), list.Data...)
			continue
		}
		var k unkeyKey
		if err := json.Unmarshal(raw, &k); err != nil {
			s.row++
			return sourceRow{key: latchkey.ImportKey{Row: s.row}, bad: "not an Unkey key object"}, nil
		}
		s.pending = append(s.pending, k)
	}
	k := s.pending[0]
	s.pending = s.pending[1:]
	s.row++
	return unkeyRow(s.row, k), nil
}

// unkeyRow maps an Unkey key onto a row: ownerId, externalId or the
// identity's externalId to the external ID, meta (with remaining, prefix
// and start, which latchkey does not enforce) to the metadata, name to
// the description, enabled false to Inactive.
func unkeyRow(row int, u unkeyKey) sourceRow {
	out := sourceRow{key: latchkey.ImportKey{Row: row, ID: u.ID, Description: u.Name}}
	k := &out.key
	var hash string
	if len(u.Hash) > 0 && u.Hash[0] == '{' {
		var h struct{ Value, Variant string }
		if json.Unmarshal(u.Hash, &h) != nil || (h.Variant != "" && h.Variant != "sha256_base64") {
			out.bad = "hash variant is not sha256_base64"
			return out
		}
		hash = h.Value
	} else if len(u.Hash) > 0 && json.Unmarshal(u.Hash, &hash) != nil {
		out.bad = "hash is neither a string nor {value, variant}"
		return out
	}
	switch {
	case u.Key != "":
		k.Secret = u.Key
	case hash != "":
		k.Digest, k.Format = hash, "unkey-sha256"
	}
	for _, ext := range []string{u.ExternalID, u.OwnerID} {
		if k.ExternalID == "" {
			k.ExternalID = ext
		}
	}
	if k.ExternalID == "" && u.Identity != nil {
		k.ExternalID = u.Identity.ExternalID
	}
	extra := map[string]any{}
	if u.Remaining != nil {
		extra["unkey_remaining"] = *u.Remaining
	}
	if u.Prefix != "" {
		extra["unkey_prefix"] = u.Prefix
	}
	if k.Metadata, out.bad = mergeMetadata(u.Meta, extra); out.bad != "" {
		return out
	}
	if u.Enabled != nil && !*u.Enabled {
		k.Status = latchkey.StatusInactive
	}
	if u.CreatedAt > 0 {
		k.CreatedAt = unixTime(u.CreatedAt)
	}
	if u.Expires > 0 {
		k.ExpiresAt = unixTime(u.Expires)
	}
	if u.LastUsedAt > 0 {
		k.LastUsedAt = unixTime(u.LastUsedAt)
	}
	return out
}

// mergeMetadata is the source's metadata with what latchkey keeps of the
// source's own fields added; nil when both are empty, and bad when it
// cannot be written as JSON.
func mergeMetadata(meta, extra map[string]any) (md json.RawMessage, bad string) {
	all := make(map[string]any, len(meta)+len(extra))
	for k, v := range meta {
		all[k] = v
	}
	for k, v := range extra {
		all[k] = v
	}
	if len(all) == 0 {
		return nil, ""
	}
	b, err := json.Marshal(all)
	if err != nil {
		return nil, "the metadata cannot be written as JSON"
	}
	return b, ""
}
