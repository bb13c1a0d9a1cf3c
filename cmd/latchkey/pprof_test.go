package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/credfile"
)

// TestServePprof: /debug/pprof/ is not there without --pprof; with it, it
// answers operators only.
func TestServePprof(t *testing.T) {
	getAs := func(t *testing.T, url, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	operator := func(t *testing.T, home string) string {
		t.Helper()
		f, err := credfile.Read(filepath.Join(home, ".latchkey", "credentials"))
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + f.Profile("default")[credfile.KeySecretAccessKey]
	}

	t.Run("off", func(t *testing.T) {
		home := t.TempDir()
		s := startServer(t, home)
		defer s.stop()
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/changefeed"} {
			if code, body := getAs(t, s.endpoint+p, operator(t, home)); code != http.StatusNotFound {
				t.Errorf("GET %s without --pprof: %d %.200s, want 404", p, code, body)
			}
		}
	})

	t.Run("on", func(t *testing.T) {
		home := t.TempDir()
		s := startServer(t, home, "--pprof")
		defer s.stop()
		admin := operator(t, home)
		c := &client{t: t, endpoint: s.endpoint, auth: admin}
		c.do("POST", "/v1/accounts", map[string]string{"name": "globex"}, 201)
		p := c.do("POST", "/v1/principals?account=globex", map[string]string{"name": "ops", "role": "admin"}, 201)
		accountAdmin := "Bearer " + p["access_key"].(map[string]any)["secret_access_key"].(string)

		tests := []struct {
			name, path, auth string
			want             int
		}{
			{"no credential", "/debug/pprof/", "", http.StatusUnauthorized},
			{"no credential, a profile", "/debug/pprof/heap", "", http.StatusUnauthorized},
			{"unknown key", "/debug/pprof/", "Bearer lksk_not-a-key", http.StatusUnauthorized},
			{"an account's admin", "/debug/pprof/", accountAdmin, http.StatusForbidden},
			{"operator, index", "/debug/pprof/", admin, http.StatusOK},
			{"operator, heap", "/debug/pprof/heap?debug=1", admin, http.StatusOK},
			{"operator, cmdline", "/debug/pprof/cmdline", admin, http.StatusOK},
			// The change feed's timings are PostgreSQL's; SQLite has none.
			{"operator, change feed on SQLite", "/debug/changefeed", admin, http.StatusNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, body := getAs(t, s.endpoint+tt.path, tt.auth)
				if code != tt.want {
					t.Fatalf("GET %s: %d %.300s, want %d", tt.path, code, body, tt.want)
				}
				if code == http.StatusOK && !strings.Contains(body, "heap") && !strings.Contains(body, "latchkey") {
					t.Errorf("GET %s: not a pprof answer: %.300s", tt.path, body)
				}
			})
		}
	})
}
