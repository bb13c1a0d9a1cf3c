package sqlstore

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestStatementsWithinTx: the methods of Tx run their statements through
// the helpers that bound them by the transaction's context (Tx.within).
// A method that called ExecContext, QueryContext, QueryRowContext or
// PrepareContext itself would run on its caller's context alone, and a
// statement that hangs there would hang its transaction past the
// operation timeout (internal/postgres TestOperationTimeout shows the
// bound).
func TestStatementsWithinTx(t *testing.T) {
	helpers := map[string]bool{"exec": true, "prepare": true, "execStmt": true, "query": true, "queryRow": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !isTxMethod(fd) || helpers[fd.Name.Name] {
				continue
			}
			checked++
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && strings.HasSuffix(sel.Sel.Name, "Context") {
					t.Errorf("%s: Tx.%s calls %s itself; use t.exec, t.query, t.queryRow, t.prepare or t.execStmt", name, fd.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
	if checked < 40 {
		t.Errorf("checked %d methods of Tx, want every one (more than 40)", checked)
	}
}

func isTxMethod(fd *ast.FuncDecl) bool {
	if fd.Recv == nil || len(fd.Recv.List) != 1 {
		return false
	}
	star, ok := fd.Recv.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	id, ok := star.X.(*ast.Ident)
	return ok && id.Name == "Tx"
}
