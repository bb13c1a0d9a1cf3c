package sqlstore_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/sqlstore"
	"github.com/latchkey/latchkey/internal/storetest"
)

// TestSQLiteUsagePlans: on the real schema, every usage flush statement
// reaches each row it reads or writes by a seek on a key, and scans
// nothing but its own rows (the VALUES clause or the JSON array). A scan
// of key_usage or usage_minutes would read a million-key table per
// statement.
func TestSQLiteUsagePlans(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range sqlstore.SQLiteUsageStatements {
		plan := storetest.QueryPlan(t, s.Write, q, make([]any, strings.Count(q, "?"))...)
		seeks := 0
		for _, d := range plan {
			switch {
			case strings.HasPrefix(d, "SEARCH "):
				seeks++
			case strings.HasPrefix(d, "SCAN ") && !strings.HasSuffix(d, "VALUES CLAUSE") && !strings.Contains(d, "jsonb_each"):
				t.Errorf("%.60s...: plan scans a table: %q\nplan: %q", q, d, plan)
			}
		}
		if seeks == 0 {
			t.Errorf("%.60s...: plan seeks nothing: %q", q, plan)
		}
	}
}
