package main

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/keyformat"
)

func TestKeyID(t *testing.T) {
	seen := map[string]bool{}
	for i := range 100_000 {
		id := keyID(i)
		if !keyformat.ValidID(id) {
			t.Fatalf("keyID(%d) = %q, not an access key ID", i, id)
		}
		if seen[id] {
			t.Fatalf("keyID(%d) = %q twice", i, id)
		}
		seen[id] = true
	}
}

// TestRun runs the measurement on a few thousand keys, on SQLite and (if
// it answers) on PostgreSQL with one resync, so that it keeps working.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds latchkey and starts servers")
	}
	bin := filepath.Join(t.TempDir(), "latchkey")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/latchkey/latchkey/cmd/latchkey").CombinedOutput(); err != nil {
		t.Fatalf("building latchkey: %v\n%s", err, out)
	}
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			c := &config{store: store, keys: 4000, hot: 100, rounds: 1, bins: []string{bin}, dir: t.TempDir(),
				pgName:  "tenmillion_test",
				resyncs: 1, rate: 100, settle: 100 * time.Millisecond, window: time.Second}
			if store == "postgres" {
				pgtest.Connect(t).Close(t.Context()) // skips (fails under CI) without a server
				c.pgURL = pgtest.AdminURL()
			}
			if err := run(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		})
	}
}
