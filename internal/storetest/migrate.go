package storetest

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

// FoldedNamesMigration checks, for a store on SQL, the migration that makes
// application names unique without regard to case (version 6), on a
// database written before it, which may hold "billing" and "Billing" in
// one account. Opening such a database is refused with an error that names
// them and says what to do, and changes nothing; once only one of them is
// left, it opens and the names are folded from then on.
//
// openDB opens the same database each time (the stores it opens are closed
// at the end of the test); raw returns the SQL handle of one.
func FoldedNamesMigration(t *testing.T, openDB func() (latchkey.Store, error), raw func(latchkey.Store) *sql.DB) {
	t.Helper()
	ctx := t.Context()
	open := func() (latchkey.Store, error) {
		s, err := openDB()
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { s.Close() })
		return s, nil
	}
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createApplication(t, s, "acme", "billing")
	createApplication(t, s, "acme", "shipping")
	createApplication(t, s, "other", "Billing")
	// Back to the schema before version 6, with what it allowed.
	db := raw(s)
	for _, q := range []string{
		`DROP INDEX applications_name_fold`,
		`DELETE FROM schema_migrations WHERE version = 6`,
		`INSERT INTO applications (account, name, description, created_at) VALUES ('acme', 'Billing', '', 0)`,
		`INSERT INTO applications (account, name, description, created_at) VALUES ('acme', 'BILLING', '', 0)`,
		`INSERT INTO applications (account, name, description, created_at) VALUES ('acme', 'Shipping', '', 0)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	_, err = open()
	if err == nil {
		t.Fatal("opened a database with application names that differ only in case")
	}
	msg := err.Error()
	t.Logf("refused: %s", msg)
	for _, want := range []string{`account "acme": "BILLING", "Billing", "billing"`, `account "acme": "Shipping", "shipping"`,
		"Nothing was changed", "delete-application"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, `"other"`) {
		t.Errorf("error %q names account other, whose names differ from acme's only in case", msg)
	}
	// Later versions stay recorded (they were applied before version 6
	// was taken back); what matters is that version 6 is not.
	if hasVersion(ctx, t, db, 6) {
		t.Error("version 6 is recorded after a refused migration")
	}

	if _, err := db.ExecContext(ctx, `DELETE FROM applications WHERE account = 'acme' AND name IN ('Billing', 'BILLING', 'Shipping')`); err != nil {
		t.Fatal(err)
	}
	s2, err := open()
	if err != nil {
		t.Fatalf("once the names are distinct: %v", err)
	}
	if v := schemaVersion(ctx, t, db); v < 6 {
		t.Errorf("schema version %d after the migration, want 6 or more", v)
	}
	err = tryUpdate(t, s2, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: "BILLING", CreatedAt: at(1)})
	})
	wantCode(t, err, latchkey.EEXISTS)
	// The index holds even where the store's own check is bypassed.
	if _, err := db.ExecContext(ctx, `INSERT INTO applications (account, name, description, created_at) VALUES ('acme', 'SHIPPING', '', 0)`); err == nil {
		t.Error("the database took \"SHIPPING\" beside \"shipping\"")
	}
}

func hasVersion(ctx context.Context, t *testing.T, db *sql.DB, v int) bool {
	t.Helper()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = `+strconv.Itoa(v)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func schemaVersion(ctx context.Context, t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
