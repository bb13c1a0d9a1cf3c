package postgres_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey/latchkey"
)

// TestOperationTimeout: a transaction that cannot finish (here, waiting
// for a row lock another session holds, as it would wait for a server
// that stopped answering) fails with EUNAVAILABLE once the operation
// timeout passes, instead of waiting as long as its caller's context.
func TestOperationTimeout(t *testing.T) {
	dbURL := newDatabase(t)
	s := openDB(t, dbURL)
	ctx := t.Context()
	if err := s.Update(ctx, func(tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	if s.OperationTimeout != 5*time.Second {
		t.Errorf("OperationTimeout after Open = %v, want 5s", s.OperationTimeout)
	}

	holder, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE name = 'acme' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		timeout  time.Duration
		deadline time.Duration // of the caller's context; 0 = none
		want     time.Duration // about how long the call takes
	}{
		{"the store's timeout", 300 * time.Millisecond, 0, 300 * time.Millisecond},
		{"a sooner caller deadline wins", 5 * time.Second, 200 * time.Millisecond, 200 * time.Millisecond},
		{"a later caller deadline does not", 250 * time.Millisecond, time.Minute, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.OperationTimeout = tt.timeout
			cctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				cctx, cancel = context.WithTimeout(cctx, tt.deadline)
				defer cancel()
			}
			start := time.Now()
			err := s.Update(cctx, func(tx latchkey.Tx) error {
				_, err := tx.FindAccount(cctx, "acme") // FOR UPDATE: waits for holder
				return err
			})
			took := time.Since(start)
			if latchkey.ErrorCode(err) != latchkey.EUNAVAILABLE {
				t.Errorf("Update = %v, want EUNAVAILABLE", err)
			}
			if took < tt.want || took > tt.want+3*time.Second {
				t.Errorf("Update took %v, want about %v", took, tt.want)
			}
		})
	}
	// The store still works once the lock is released.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	s.OperationTimeout = 5 * time.Second
	if err := s.View(ctx, func(tx latchkey.Tx) error { _, err := tx.FindAccount(ctx, "acme"); return err }); err != nil {
		t.Errorf("after the timeouts: %v", err)
	}
}

// TestBoundTxCoversTx: every method of latchkey.Tx is bounded by boundTx
// (timeout.go). A method added to the interface and not to boundTx would
// pass through on its caller's context, and a statement that hangs there
// would hang its transaction past the operation timeout.
func TestBoundTxCoversTx(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "timeout.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	bounded := map[string]bool{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
			continue
		}
		if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
			if id, ok := star.X.(*ast.Ident); ok && id.Name == "boundTx" {
				bounded[fd.Name.Name] = true
			}
		}
	}
	tx := reflect.TypeFor[latchkey.Tx]()
	for i := range tx.NumMethod() {
		if m := tx.Method(i).Name; !bounded[m] {
			t.Errorf("latchkey.Tx.%s is not bounded: add it to boundTx in timeout.go", m)
		}
	}
}
