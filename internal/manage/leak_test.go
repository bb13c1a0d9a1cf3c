package manage_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// TestMarkExposedMasksWhere: whatever surrounds a secret in the where text
// of an exposure, neither the stored key nor its audit event holds the
// secret, and the text is cut to 512 bytes after masking.
func TestMarkExposedMasksWhere(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		where func(secret string) string
		want  func(secret string) string // "" when any masked form will do
	}{
		{"as written", func(s string) string { return "a gist: " + s }, func(s string) string { return "a gist: " + keyformat.Mask(s) }},
		{"split by a control character", func(s string) string { return "a gist: " + s[:2] + "\x00" + s[2:] }, func(s string) string { return "a gist: " + keyformat.Mask(s) }},
		{"in a query string", func(s string) string { return "https://x.example/?token=" + s + "&page=2" }, func(string) string { return "https://x.example/?token=...&page=2" }},
		{"after 500 bytes", func(s string) string { return strings.Repeat("x ", 250) + s }, nil},
		{"after 5000 bytes", func(s string) string { return strings.Repeat("x ", 2500) + s }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := strings.ReplaceAll(tc.name, " ", "-")
			e.app(t, latchkey.DefaultAccount, app)
			k := e.key(t, latchkey.DefaultAccount, app)
			tail := k.Secret[len(keyformat.SecretPrefix)+4:]
			show := func(s string) string { return strings.ReplaceAll(s, tail, "<secret>") } // never print the secret
			got, err := e.svc.MarkExposed(t.Context(), e.operator, k.ID, tc.where(k.Secret), false)
			if err != nil {
				t.Fatal(err)
			}
			stored := e.storedKey(t, k.ID).Exposed.Where
			if got.Exposed.Where != stored {
				t.Errorf("MarkExposed returned where %q, stored %q", show(got.Exposed.Where), show(stored))
			}
			if len(stored) > 512 {
				t.Errorf("stored where has %d bytes, want at most 512", len(stored))
			}
			if tc.want != nil && stored != tc.want(k.Secret) {
				t.Errorf("stored where %q, want %q", show(stored), tc.want(k.Secret))
			}
			if strings.Contains(stored, tail) {
				t.Errorf("stored where shows the secret: %q", show(stored))
			}
			evs := e.events(t)
			last := evs[len(evs)-1]
			b, _ := json.Marshal(last)
			if last.Action != latchkey.ActionAccessKeyExposed || strings.Contains(string(b), tail) {
				t.Errorf("audit event %s: want %s without the secret", show(string(b)), latchkey.ActionAccessKeyExposed)
			}
		})
	}
}
