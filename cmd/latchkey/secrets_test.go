package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/latchkey/latchkey/keyformat"
)

// TestSecretsNeverLeakServeAndCLI runs the server with debug logging in
// JSON and drives it through the CLI (every command, every output format,
// success and failure) and the HTTP API (verification, forward auth,
// credentials in URLs, leak reports, bad credentials), with keys made at
// run time. Then it looks for every secret, in every form it could take,
// in the server's output, each CLI command's output (but those that print a
// new secret once, by design), the database files, the audit log, the
// metrics and every HTTP answer but the create answers. Only the
// credentials file, where secrets are saved on purpose, may hold them.
func TestSecretsNeverLeakServeAndCLI(t *testing.T) {
	home := t.TempDir()
	db := filepath.Join(home, "lk.db")
	srv := startServer(t, home, "--log-format", "json", "--usage-flush-interval", "50ms", "--database-url", "sqlite:"+db)
	creds := filepath.Join(home, ".latchkey", "credentials")
	f, err := credfile.Read(creds)
	if err != nil {
		t.Fatal(err)
	}
	type secret struct{ id, secret string }
	admin := secret{f.Profile("default")[credfile.KeyAccessKeyID], f.Profile("default")[credfile.KeySecretAccessKey]}
	secrets := []secret{admin}

	var places []place
	// cli runs the latchkey binary as the CLI; printsSecret marks the one
	// output that shows a new secret, by design.
	cli := func(wantExit int, printsSecret bool, env []string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME=", "NO_COLOR=1", "LATCHKEY_SHARED_CREDENTIALS_FILE="+creds,
			"LATCHKEY_ACCESS_KEY_ID=", "LATCHKEY_SECRET_ACCESS_KEY=", "LATCHKEY_PROFILE=", "LATCHKEY_OUTPUT=", goraceEnv())
		cmd.Env = append(cmd.Env, env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Stdin = strings.NewReader("")
		t0 := time.Now()
		err := cmd.Run()
		if d := time.Since(t0); d > 2*time.Second {
			t.Logf("latchkey %s took %s", args[0], d.Round(time.Millisecond))
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantExit {
			t.Fatalf("latchkey %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantExit, stdout.Bytes(), stderr.Bytes())
		}
		if !printsSecret {
			places = append(places, place{"stdout of latchkey " + args[0], stdout.Bytes()})
		}
		places = append(places, place{"stderr of latchkey " + args[0], stderr.Bytes()})
		return stdout.Bytes()
	}
	created := func(out []byte) secret {
		t.Helper()
		var k struct {
			ID        string `json:"access_key_id"`
			Secret    string `json:"secret_access_key"`
			AccessKey *struct {
				ID     string `json:"access_key_id"`
				Secret string `json:"secret_access_key"`
			} `json:"access_key"`
		}
		if err := json.Unmarshal(out, &k); err != nil {
			t.Fatalf("create output %s: %v", out, err)
		}
		if k.AccessKey != nil {
			k.ID, k.Secret = k.AccessKey.ID, k.AccessKey.Secret
		}
		if !keyformat.ValidSecret(k.Secret) {
			t.Fatalf("no secret in the create output")
		}
		s := secret{k.ID, k.Secret}
		secrets = append(secrets, s)
		return s
	}
	saved := func(profile string) secret {
		t.Helper()
		f, err := credfile.Read(creds)
		if err != nil {
			t.Fatal(err)
		}
		p := f.Profile(profile)
		s := secret{p[credfile.KeyAccessKeyID], p[credfile.KeySecretAccessKey]}
		if !keyformat.ValidSecret(s.secret) {
			t.Fatalf("profile %s holds no secret", profile)
		}
		secrets = append(secrets, s)
		return s
	}
	none := []string(nil)

	// The CLI surface.
	cli(0, false, none, "version")
	cli(0, false, none, "configure", "list")
	cli(0, false, none, "create-account", "--account-name", "acme")
	cli(0, false, none, "create-application", "--application-name", "billing", "--description", "payments",
		"--allowed-ips", "192.0.2.0/24", "--scopes", "billing:*")
	cli(0, false, none, "create-application", "--application-name", "orders")
	k1 := created(cli(0, true, none, "create-access-key", "--application-name", "billing", "--description", "blue", "--output", "json"))
	// in text form, the secret is printed once: take it from there
	if m := secretRE.Find(cli(0, true, none, "create-access-key", "--application-name", "billing", "--description", "green")); m != nil {
		secrets = append(secrets, secret{"(printed)", string(m)})
	} else {
		t.Fatal("create-access-key printed no secret")
	}
	cli(0, false, none, "create-access-key", "--application-name", "orders", "--save-to-profile", "orders")
	k3 := saved("orders")
	pat := created(cli(0, true, none, "create-principal", "--principal-name", "pat", "--role", "admin", "--output", "json"))
	cli(0, false, none, "create-principal", "--principal-name", "gate", "--role", "verifier", "--save-to-profile", "gate")
	gate := saved("gate")
	for _, o := range []string{"json", "table", "text"} {
		cli(0, false, none, "list-access-keys", "--output", o)
		cli(0, false, none, "list-access-keys", "--application-name", "billing", "--output", o)
		cli(0, false, none, "list-applications", "--output", o)
		cli(0, false, none, "list-accounts", "--output", o)
		cli(0, false, none, "list-principals", "--output", o)
		cli(0, false, none, "list-audit-events", "--output", o)
		cli(0, false, none, "get-access-key-last-used", "--access-key-id", k1.id, "--output", o)
	}
	// the keys in use, from the API, so that last-used and usage have data
	for _, s := range []secret{k1, k3} {
		verifyAs(t, srv, gate.secret, s.secret)
	}
	cli(0, false, none, "update-access-key", "--access-key-id", k1.id, "--description", "blue, renamed", "--yes")
	cli(0, false, none, "update-access-key", "--access-key-id", k1.id, "--status", "Inactive", "--yes")
	cli(0, false, none, "update-access-key", "--access-key-id", k1.id, "--status", "Active", "--yes")
	cli(0, false, none, "update-application", "--application-name", "billing", "--description", "payments and refunds")
	cli(0, false, none, "rotate-access-key", "--access-key-id", k3.id, "--save-to-profile", "orders", "--yes",
		"--quiet-period", "1s", "--validate-period", "1s", "--poll-interval", "100ms")
	k3b := saved("orders")
	cli(0, false, none, "list-audit-events", "--application-name", "orders", "--output", "json")
	// acting as other principals, by profile and by environment
	cli(1, false, none, "list-applications", "--profile", "orders", "--endpoint-url", srv.endpoint) // an application key: refused
	cli(1, false, []string{"LATCHKEY_ACCESS_KEY_ID=" + pat.id, "LATCHKEY_SECRET_ACCESS_KEY=" + k1.secret}, "list-applications")
	cli(0, false, []string{"LATCHKEY_ACCESS_KEY_ID=" + pat.id, "LATCHKEY_SECRET_ACCESS_KEY=" + pat.secret}, "list-applications", "--output", "json")
	cli(2, false, []string{"LATCHKEY_SECRET_ACCESS_KEY=" + gate.secret}, "create-application", "--application-name", "nope")
	cli(1, false, []string{"LATCHKEY_ACCESS_KEY_ID=" + gate.id, "LATCHKEY_SECRET_ACCESS_KEY=" + gate.secret}, "create-application", "--application-name", "nope")
	cli(1, false, none, "delete-access-key", "--access-key-id", k1.id)
	cli(0, false, none, "delete-access-key", "--access-key-id", k1.id, "--force")
	cli(1, false, none, "delete-application", "--application-name", "billing")
	cli(0, false, none, "delete-principal", "--principal-name", "pat")
	cli(1, false, []string{"LATCHKEY_ACCESS_KEY_ID=" + pat.id, "LATCHKEY_SECRET_ACCESS_KEY=" + pat.secret}, "list-applications")

	// The HTTP surface: what the CLI does not reach.
	answers := httpSurface(t, srv, admin.secret, gate.secret, k3b.secret, k1.secret)

	// Everything written down.
	time.Sleep(200 * time.Millisecond) // a usage flush
	audit, _ := httpGet(t, srv, admin.secret, "/v1/audit-events?limit=1000")
	places = append(places, place{"audit log", audit})
	if metrics, status := httpGet(t, srv, admin.secret, "/metrics"); status == http.StatusOK {
		places = append(places, place{"metrics", metrics})
	} else {
		t.Logf("TODO: no /metrics on this server (status %d); search it once it exists", status)
	}
	places = append(places, answers...)
	srv.stop()
	places = append(places, place{"server stdout", []byte(srv.stdout.String())}, place{"server stderr", []byte(srv.stderr.String())})
	if !strings.Contains(srv.stderr.String(), `"level":"DEBUG"`) {
		t.Fatal("the server logged nothing at debug level; the search would prove nothing")
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(db + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		places = append(places, place{"database file" + suffix, b})
	}

	// and every secret saved in a profile
	f, err = credfile.Read(creds)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Profiles() {
		if s := f.Profile(p)[credfile.KeySecretAccessKey]; s != "" {
			secrets = append(secrets, secret{f.Profile(p)[credfile.KeyAccessKeyID], s})
		}
	}
	if st, err := os.Stat(creds); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("credentials file: %v, mode %v", err, st.Mode())
	}
	seen := map[string]bool{}
	checked := 0
	for _, s := range secrets {
		if seen[s.secret] {
			continue
		}
		seen[s.secret] = true
		forms := []string{
			s.secret,
			strings.TrimPrefix(s.secret, keyformat.SecretPrefix),
			base64.StdEncoding.EncodeToString([]byte(s.id + ":" + s.secret)),
			base64.StdEncoding.EncodeToString([]byte(":" + s.secret)),
			base64.StdEncoding.EncodeToString([]byte(s.secret)),
		}
		for _, p := range places {
			for i, form := range forms {
				if bytes.Contains(p.data, []byte(form)) {
					t.Errorf("the %s holds form %d of the secret of key %s", p.name, i, s.id)
				}
			}
			checked++
		}
	}
	t.Logf("%d secrets searched for in %d places (%d searches, 5 forms each)", len(seen), len(places), checked)
}

// verifyAs verifies a key as principal.
func verifyAs(t *testing.T, srv *server, as, key string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"key": key, "ip": "192.0.2.9", "user_agent": "svc/1"})
	req, _ := http.NewRequest("POST", srv.endpoint+"/v1/verify", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+as)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}

func httpGet(t *testing.T, srv *server, as, path string) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.endpoint+path, nil)
	req.Header.Set("Authorization", "Bearer "+as)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return b, res.StatusCode
}

// httpSurface calls what the CLI does not: verification and forward auth
// with every credential form, credentials in URLs, leak reports, refused
// sign-ins. It returns every answer (none of them creates a key).
func httpSurface(t *testing.T, srv *server, admin, gate, appKey, deleted string) []place {
	t.Helper()
	var out []place
	send := func(method, path string, hdr map[string]string, body string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, srv.endpoint+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		hb, _ := json.Marshal(res.Header)
		out = append(out, place{"answer to " + method + " " + strings.SplitN(path, "?", 2)[0], append(b, hb...)})
	}
	bearer := func(s string) map[string]string { return map[string]string{"Authorization": "Bearer " + s} }
	basic := func(s string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+s))}
	}
	j := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for _, key := range []string{appKey, deleted, gate, admin} {
		send("POST", "/v1/verify", bearer(gate), j(map[string]string{"key": key, "ip": "198.51.100.1", "user_agent": "app/1"}))
		send("POST", "/v1/verify", basic(gate), j(map[string]string{"key": key, "access_key_id": "LKIAAAAAAAAAAAAAAAAA"}))
		send("GET", "/v1/authorize", map[string]string{"X-Api-Key": key, "X-Original-URI": "/orders/1"}, "")
		send("GET", "/v1/authorize", basic(key), "")
		send("GET", "/v1/accounts", bearer(key), "")
		send("GET", "/v1/accounts", map[string]string{"Authorization": "Token " + key}, "")
		send("GET", "/v1/applications?api_key="+key, nil, "")
		send("GET", "/v1/access-keys/"+key, bearer(admin), "")
		send("POST", "/v1/verify", bearer(gate), `{"key":"`+key+`"`) // malformed JSON around a secret
		send("POST", "/v1/leaks/check", bearer(admin), j(map[string][]string{"digests": {digestOf(key)}}))
	}
	send("POST", "/v1/leaks", nil, j(map[string]any{"findings": []map[string]string{{"secret": deleted, "where": "a paste"}}}))
	send("POST", "/v1/leaks", bearer(admin), j(map[string]any{"findings": []map[string]string{{"secret": appKey, "where": "a gist"}}}))
	send("GET", "/v1/audit-events?limit=1000", bearer(admin), "")
	send("GET", "/v1/access-keys?limit=1000", bearer(admin), "")
	return out
}

func digestOf(secret string) string {
	d := keyformat.Sum(secret)
	return hex.EncodeToString(d[:])
}

// place is somewhere a secret must not be.
type place struct {
	name string
	data []byte
}

var secretRE = regexp.MustCompile(`lksk_[0-9A-Za-z]{46}`)
