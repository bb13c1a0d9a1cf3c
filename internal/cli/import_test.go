package cli_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/cli/clitest"
	"github.com/redis/go-redis/v9"
	"github.com/spaolacci/murmur3"
)

// The import tests load real data the way each system stores it, made at
// run time: Tyk's keys written into a real Redis exactly as the Tyk
// gateway writes them, a CSV of SHA-256 digests, an Unkey export. Then
// every original secret is verified through the server.

func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// tykKey is a key as a Tyk 5 gateway makes it (crypto.GenerateToken): the
// base64 of {"org","id","h"} naming its hash algorithm, or, for legacy
// keys (no algorithm), the org ID followed by a UUID in hex.
type tykKey struct {
	token, algo, hashed string
	session             map[string]any
}

// tykHash is Tyk's storage.HashStr: the algorithm the token names (legacy
// tokens: murmur32) over the token, hex of the hash's Sum.
func tykHash(token, algo string) string {
	var h hash.Hash
	switch algo {
	case "sha256":
		h = sha256.New()
	case "murmur64":
		h = murmur3.New64()
	case "murmur128":
		h = murmur3.New128()
	default:
		h = murmur3.New32()
	}
	h.Write([]byte(token))
	return hex.EncodeToString(h.Sum(nil))
}

func newTykKey(t testing.TB, org, algo, alias string, mod func(map[string]any)) tykKey {
	t.Helper()
	id := randHex(t, 16)
	token := org + id
	if algo != "" {
		token = base64.StdEncoding.EncodeToString(fmt.Appendf(nil, `{"org":"%s","id":"%s","h":"%s"}`, org, id, algo))
	}
	// A session object as the gateway stores it (user.SessionState).
	s := map[string]any{
		"last_check": 0, "allowance": 1000, "rate": 1000, "per": 60, "throttle_interval": 0, "throttle_retry_limit": 0,
		"max_query_depth": 0, "date_created": "2024-01-02T03:04:05.123456789Z", "expires": 0,
		"quota_max": -1, "quota_renews": 1704164645, "quota_remaining": 0, "quota_renewal_rate": 0,
		"access_rights": map[string]any{"a1b2c3": map[string]any{"api_name": "Orders", "api_id": "a1b2c3", "versions": []string{"Default"}, "allowed_urls": nil, "limit": nil, "allowance_scope": ""}},
		"org_id":        org, "oauth_client_id": "", "oauth_keys": nil, "certificate": "",
		"basic_auth_data": map[string]any{"password": "", "hash_type": ""}, "jwt_data": map[string]any{"secret": ""},
		"hmac_enabled": false, "enable_http_signature_validation": false, "hmac_string": "", "rsa_certificate_id": "",
		"is_inactive": false, "apply_policy_id": "", "apply_policies": nil, "data_expires": 0,
		"monitor": map[string]any{"trigger_limits": nil}, "enable_detailed_recording": false,
		"meta_data": map[string]any{"plan": "gold"}, "tags": []string{}, "alias": alias,
		"last_updated": "1704164645", "id_extractor_deadline": 0, "session_lifetime": 0,
	}
	if mod != nil {
		mod(s)
	}
	return tykKey{token: token, algo: algo, hashed: tykHash(token, algo), session: s}
}

// tykKeys makes one key of each of Tyk's hash algorithms, for two
// customers, plus an inactive and an expired key.
func tykKeys(t testing.TB) []tykKey {
	t.Helper()
	org := randHex(t, 12) // a Mongo object ID: Tyk's org IDs
	return []tykKey{
		newTykKey(t, org, "murmur64", "cust-1", nil), // Tyk's default
		newTykKey(t, org, "", "cust-1", nil),         // legacy key: murmur32
		newTykKey(t, org, "murmur128", "cust-2", nil),
		newTykKey(t, org, "sha256", "cust-2", nil),
		newTykKey(t, org, "murmur64", "cust-3", func(s map[string]any) { s["is_inactive"] = true }),
		newTykKey(t, org, "murmur64", "cust-4", func(s map[string]any) { s["expires"] = time.Now().Add(-time.Hour).Unix() }),
	}
}

// tykRedis returns a client of a database of the test Redis that the test
// alone writes (db 13), failing under CI when Redis cannot be reached.
func tykRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv("LATCHKEY_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	url := "redis://" + addr + "/13"
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis is unreachable at %s (set LATCHKEY_TEST_REDIS_ADDR): %v", addr, err)
		}
		t.Skipf("Redis is unreachable at %s; set LATCHKEY_TEST_REDIS_ADDR to run this test: %v", addr, err)
	}
	return rdb, url
}

type importOutput struct {
	Counts      latchkey.ImportCounts   `json:"counts"`
	RowsSkipped int                     `json:"rows_skipped"`
	Results     []latchkey.ImportResult `json:"results"`
}

func runImport(t *testing.T, env map[string]string, args ...string) (importOutput, string) {
	t.Helper()
	out, stderr, code := runAs(t, env, false, append([]string{"import-keys", "--output", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("import-keys %v: exit %d\n%s", args, code, stderr)
	}
	var o importOutput
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	return o, stderr
}

func adminEnv(srv *clitest.Server) map[string]string {
	return map[string]string{
		"LATCHKEY_ENDPOINT_URL": srv.URL, "LATCHKEY_ACCESS_KEY_ID": srv.Admin.AccessKeyID,
		"LATCHKEY_SECRET_ACCESS_KEY": srv.Admin.SecretAccessKey, "HOME": "/nonexistent",
	}
}

// verifyAll verifies every secret through POST /v1/verify and returns the
// results.
func verifyAll(t *testing.T, srv *clitest.Server, secrets []string) []*client.VerifyResult {
	t.Helper()
	cl := srv.Client(t, srv.Verifier(t, fmt.Sprintf("gw-%s", randHex(t, 4))))
	var out []*client.VerifyResult
	for _, s := range secrets {
		res, err := cl.Verify(t.Context(), client.VerifyInput{Key: s})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res)
	}
	return out
}

func checkTykVerified(t *testing.T, srv *clitest.Server, keys []tykKey) {
	t.Helper()
	var secrets []string
	for _, k := range keys {
		secrets = append(secrets, k.token)
	}
	want := []latchkey.Code{latchkey.CodeValid, latchkey.CodeValid, latchkey.CodeValid, latchkey.CodeValid, latchkey.CodeInactive, latchkey.CodeExpired}
	for i, res := range verifyAll(t, srv, secrets) {
		if res.Code != want[i] {
			t.Errorf("Tyk key %d (%s): %s, want %s", i, keys[i].algo, res.Code, want[i])
			continue
		}
		if res.Valid && (res.ExternalID != keys[i].session["alias"] || !strings.Contains(string(res.Metadata), `"plan":"gold"`) ||
			!strings.Contains(string(res.Metadata), keys[i].session["org_id"].(string))) {
			t.Errorf("Tyk key %d: external ID %q, metadata %s", i, res.ExternalID, res.Metadata)
		}
	}
	// A key Tyk never issued, in each shape, is refused.
	for _, res := range verifyAll(t, srv, []string{keys[0].token + "x", newTykKey(t, "5e9d", "murmur64", "", nil).token}) {
		if res.Code != latchkey.CodeNotFound {
			t.Errorf("unknown Tyk-shaped key: %s", res.Code)
		}
	}
}

func TestImportTykRedis(t *testing.T) {
	rdb, url := tykRedis(t)
	keys := tykKeys(t)
	for _, k := range keys {
		b, err := json.Marshal(k.session)
		if err != nil {
			t.Fatal(err)
		}
		name := "apikey-" + k.hashed
		if err := rdb.Set(t.Context(), name, b, 0).Err(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Del(context.Background(), name) })
	}
	srv := clitest.Start(t)
	env := adminEnv(srv)
	out, stderr := runImport(t, env, "--from", "tyk-redis", "--redis-url", url, "--group-by", "external_id")
	if out.Counts.Created != len(keys) || out.Counts.Applications != 4 {
		t.Fatalf("first import: %+v %+v\n%s", out.Counts, out.Results, stderr)
	}
	if !strings.Contains(stderr, "import: 6 rows (created 6") {
		t.Errorf("no progress line on a non-terminal:\n%s", stderr)
	}
	for _, k := range keys {
		if strings.Contains(stderr, k.hashed) || strings.Contains(stderr, k.token) {
			t.Fatal("a digest or secret was printed")
		}
	}
	// Idempotent: the same import changes nothing.
	out, _ = runImport(t, env, "--from", "tyk-redis", "--redis-url", url, "--group-by", "external_id")
	if out.Counts.Exists != len(keys) || out.Counts.Created != 0 {
		t.Fatalf("second import: %+v", out.Counts)
	}
	checkTykVerified(t, srv, keys)

	// One application for every key breaks the two-keys rule: refused.
	srv2 := clitest.Start(t)
	if _, err := srv2.Client(t, srv2.Admin).CreateApplication(t.Context(), client.CreateApplicationInput{Name: "legacy"}); err != nil {
		t.Fatal(err)
	}
	out, _ = runImport(t, adminEnv(srv2), "--from", "tyk-redis", "--redis-url", url, "--application-name", "legacy")
	if out.Counts.Refused != len(keys) || !strings.Contains(out.Results[0].Reason, "group_by") {
		t.Fatalf("into one application: %+v %+v", out.Counts, out.Results)
	}
}

func TestImportTykExport(t *testing.T) {
	keys := tykKeys(t)
	var b strings.Builder
	for _, k := range keys {
		line, err := json.Marshal(map[string]any{"key": "apikey-" + k.hashed, "session": k.session})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	file := filepath.Join(t.TempDir(), "tyk.jsonl")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := clitest.Start(t)
	out, _ := runImport(t, adminEnv(srv), "--from", "tyk-export", "--file", file, "--group-by", "key", "--application-name", "tyk")
	if out.Counts.Created != len(keys) || out.Counts.Applications != len(keys) {
		t.Fatalf("%+v %+v", out.Counts, out.Results)
	}
	checkTykVerified(t, srv, keys)
}

// importRows is the size of the CSV import; LATCHKEY_IMPORT_ROWS makes it
// the million keys of docs/benchmarks.md.
func importRows(t *testing.T) int {
	if v := os.Getenv("LATCHKEY_IMPORT_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("LATCHKEY_IMPORT_ROWS=%q: want a number of at least 10", v)
		}
		return n
	}
	return 20000
}

// writeDigestCSV writes rows [from, to) of a CSV of SHA-256 digests of keys
// made at run time (a hand-rolled table's export) and returns some of the
// secrets to check.
func writeDigestCSV(t *testing.T, file string, from, to int, header bool) []string {
	t.Helper()
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	if header {
		b.WriteString("id,digest,external_id,created_at\n")
	}
	var sample []string
	seed := make([]byte, 24)
	if _, err := rand.Read(seed); err != nil {
		t.Fatal(err)
	}
	prefix := "live_" + hex.EncodeToString(seed) + "_"
	for i := from; i < to; i++ {
		secret := prefix + strconv.Itoa(i)
		d := sha256.Sum256([]byte(secret))
		fmt.Fprintf(&b, "%d,%s,cust%d,%d\n", i, hex.EncodeToString(d[:]), i, 1700000000+i)
		if i%(max((to-from)/50, 1)) == 0 || i == to-1 {
			sample = append(sample, secret)
		}
		if b.Len() > 1<<20 {
			if _, err := f.WriteString(b.String()); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
	return sample
}

// TestImportDigestCSV imports a CSV of SHA-256 digests, one application per
// key, in two halves: the second run is a --resume after the first stopped
// half-way (as a crash would leave it). It logs the rate; with
// LATCHKEY_IMPORT_ROWS=1000000 it is the figure in docs/benchmarks.md.
func TestImportDigestCSV(t *testing.T) {
	n := importRows(t)
	file := filepath.Join(t.TempDir(), "keys.csv")
	srv := clitest.Start(t)
	env := adminEnv(srv)
	sample := writeDigestCSV(t, file, 0, n/2, true)

	start := time.Now()
	out, stderr := runImport(t, env, "--from", "csv", "--file", file, "--hash-format", "sha256-hex", "--group-by", "key", "--origin", "billing-db")
	if out.Counts.Created != n/2 || out.Counts.Applications != n/2 {
		t.Fatalf("first half: %+v %+v\n%s", out.Counts, out.Results, stderr)
	}
	// The rest of the file arrives; --resume skips what is done.
	sample = append(sample, writeDigestCSV(t, file, n/2, n, false)...)
	out, _ = runImport(t, env, "--from", "csv", "--file", file, "--hash-format", "sha256-hex", "--group-by", "key", "--origin", "billing-db", "--resume")
	took := time.Since(start)
	if out.RowsSkipped != n/2 || out.Counts.Created != n-n/2 || out.Counts.Exists != 0 {
		t.Fatalf("resumed: skipped %d, %+v", out.RowsSkipped, out.Counts)
	}
	t.Logf("imported %d keys from CSV in %v (%.0f keys/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	for i, res := range verifyAll(t, srv, sample) {
		if !res.Valid || !strings.HasPrefix(res.ExternalID, "cust") {
			t.Fatalf("sample %d: %s %q", i, res.Code, res.ExternalID)
		}
	}
	// Without --resume the whole file is read again and every row exists.
	if n <= 20000 {
		out, _ = runImport(t, env, "--from", "csv", "--file", file, "--hash-format", "sha256-hex", "--group-by", "key", "--origin", "billing-db")
		if out.Counts.Exists != n {
			t.Fatalf("again: %+v", out.Counts)
		}
	}
}

func TestImportCSVRows(t *testing.T) {
	srv := clitest.Start(t)
	if _, err := srv.Client(t, srv.Admin).CreateApplication(t.Context(), client.CreateApplicationInput{Name: "billing"}); err != nil {
		t.Fatal(err)
	}
	good := "tok_" + randHex(t, 16)
	salted := "tok_" + randHex(t, 16)
	saltedDigest := sha256.Sum256([]byte("NaCl" + salted))
	csv := "secret,digest,hash_format,salt,status,metadata\n" +
		good + ",,,,,\"{\"\"tier\"\":\"\"free\"\"}\"\n" +
		"," + hex.EncodeToString(saltedDigest[:]) + ",sha256-salted-hex,NaCl,,\n" +
		",abcd,md5,,,\n" +
		"tok_x,,,,Disabled,\n" +
		",zz,sha256-hex,,,\n"
	file := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := runImport(t, adminEnv(srv), "--from", "csv", "--file", file, "--application-name", "billing")
	if out.Counts != (latchkey.ImportCounts{Created: 2, Invalid: 3}) {
		t.Fatalf("%+v %+v", out.Counts, out.Results)
	}
	reasons := map[int]string{}
	for _, r := range out.Results {
		reasons[r.Row] = r.Reason
	}
	for row, want := range map[int]string{3: "hash_format must be", 4: "status must be", 5: "digest is not sha256-hex"} {
		if !strings.Contains(reasons[row], want) {
			t.Errorf("row %d: reason %q, want %q", row, reasons[row], want)
		}
	}
	// On a terminal the progress is a bar redrawn in place; the rows are
	// all there already.
	_, stderr, code := runAs(t, adminEnv(srv), true, "import-keys", "--from", "csv", "--file", file, "--application-name", "billing")
	if code != 0 || !strings.Contains(stderr, "\r[##############################] 100% 5 rows") || strings.Contains(stderr, "import: ") {
		t.Errorf("progress on a terminal: exit %d, %q", code, stderr)
	}
	if res := verifyAll(t, srv, []string{good}); !res[0].Valid || string(res[0].Metadata) != `{"tier":"free"}` {
		t.Fatalf("CSV secret: %+v", res[0])
	}
	// A salted key is found through its ID (Basic auth ID:secret).
	var saltedID string
	page, err := srv.Client(t, srv.Admin).ListAccessKeys(t.Context(), client.ListAccessKeysInput{Application: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range page.AccessKeys {
		if k.Imported != nil && k.Imported.HashFormat == latchkey.HashSHA256Salted {
			saltedID = k.ID
		}
	}
	cl := srv.Client(t, srv.Verifier(t, "gw-salted"))
	res, err := cl.Verify(t.Context(), client.VerifyInput{Key: salted, AccessKeyID: saltedID})
	if err != nil || !res.Valid {
		t.Fatalf("salted key with its ID: %+v %v", res, err)
	}
}

func TestImportUnkey(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	type uk struct {
		secret string
		obj    map[string]any
	}
	var keys []uk
	for i, owner := range []string{"user_1", "user_1", "user_2"} {
		secret := "sk_live_" + randHex(t, 16)
		sum := sha256.Sum256([]byte(secret))
		obj := map[string]any{
			"id": "key_" + randHex(t, 8), "start": secret[:11], "prefix": "sk_live", "workspaceId": "ws_1", "apiId": "api_1",
			"name": fmt.Sprintf("key %d", i), "ownerId": owner, "meta": map[string]any{"team": "a"}, "remaining": 100 - i,
			"createdAt": now.Add(-time.Duration(i+1) * 24 * time.Hour).UnixMilli(), "enabled": i != 2,
			"hash": base64.StdEncoding.EncodeToString(sum[:]),
		}
		if i == 1 {
			obj["hash"] = map[string]any{"value": obj["hash"], "variant": "sha256_base64"}
		}
		keys = append(keys, uk{secret, obj})
	}
	var objs []map[string]any
	for _, k := range keys {
		objs = append(objs, k.obj)
	}
	b, err := json.Marshal(objs)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "unkey.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := clitest.Start(t)
	out, _ := runImport(t, adminEnv(srv), "--from", "unkey", "--file", file, "--group-by", "external_id")
	if out.Counts.Created != 3 || out.Counts.Applications != 2 {
		t.Fatalf("%+v %+v", out.Counts, out.Results)
	}
	res := verifyAll(t, srv, []string{keys[0].secret, keys[1].secret, keys[2].secret})
	if !res[0].Valid || !res[1].Valid || res[2].Code != latchkey.CodeInactive {
		t.Fatalf("unkey keys: %s %s %s", res[0].Code, res[1].Code, res[2].Code)
	}
	if res[0].ExternalID != "user_1" || !strings.Contains(string(res[0].Metadata), `"unkey_remaining":100`) {
		t.Fatalf("external ID %q, metadata %s", res[0].ExternalID, res[0].Metadata)
	}
	k, err := srv.Client(t, srv.Admin).GetAccessKey(t.Context(), res[0].AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if k.Imported == nil || k.Imported.Origin != "unkey" || k.Imported.OriginalID != keys[0].obj["id"] ||
		!k.CreatedAt.Equal(time.UnixMilli(keys[0].obj["createdAt"].(int64)).UTC()) || k.Description != "key 0" {
		t.Fatalf("stored key: %+v %+v", k, k.Imported)
	}
}
