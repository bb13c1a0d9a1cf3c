package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

var auditStreamTests = []test{
	{"Lease", testAuditSinkLease},
	{"Cursors", testAuditSinkCursors},
}

func testAuditSinkLease(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	claim := func(sink, holder string, now int) bool {
		t.Helper()
		var ok bool
		if err := s.Update(ctx, func(tx latchkey.Tx) (err error) {
			ok, err = tx.ClaimAuditSink(ctx, sink, holder, at(now), at(now).Add(10*time.Second))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	steps := []struct {
		name, sink, holder string
		now                int
		want               bool
	}{
		{"first claim", "stdout", "a", 0, true},
		{"another replica while held", "stdout", "b", 5, false},
		{"the holder renews", "stdout", "a", 8, true},
		{"still held after the first lease's end", "stdout", "b", 12, false},
		{"another sink is free", "syslog+tls://siem:6514", "b", 12, true},
		{"taken once the lease ended", "stdout", "b", 18, true},
		{"the old holder has lost it", "stdout", "a", 19, false},
	}
	for _, st := range steps {
		if got := claim(st.sink, st.holder, st.now); got != st.want {
			t.Fatalf("%s: claim %s by %s at %d = %v, want %v", st.name, st.sink, st.holder, st.now, got, st.want)
		}
	}
	release := func(holder string) {
		t.Helper()
		if err := s.Update(ctx, func(tx latchkey.Tx) error { return tx.ReleaseAuditSink(ctx, "stdout", holder) }); err != nil {
			t.Fatal(err)
		}
	}
	release("a") // not the holder: nothing changes
	if claim("stdout", "c", 20) {
		t.Fatal("a release by a replica that does not hold the lease freed it")
	}
	release("b")
	if !claim("stdout", "c", 20) {
		t.Fatal("a released lease was not free at once")
	}
}

func testAuditSinkCursors(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	cursors := func(sink string) map[string]int64 {
		t.Helper()
		var out map[string]int64
		if err := s.View(ctx, func(tx latchkey.Tx) (err error) {
			out, err = tx.AuditSinkCursors(ctx, sink)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := cursors("stdout"); len(got) != 0 {
		t.Fatalf("a new sink's cursors = %v, want none", got)
	}
	for _, a := range []struct {
		sink, account string
		seq           int64
	}{
		{"stdout", "acme", 5},
		{"stdout", "acme", 3}, // behind: ignored
		{"stdout", "other", 1},
		{"file:/var/log/audit.jsonl", "acme", 9},
		{"stdout", "acme", 7},
	} {
		if err := s.Update(ctx, func(tx latchkey.Tx) error { return tx.AdvanceAuditSink(ctx, a.sink, a.account, a.seq) }); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(map[string]int64{"acme": 7, "other": 1}, cursors("stdout")); diff != "" {
		t.Fatalf("stdout cursors (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int64{"acme": 9}, cursors("file:/var/log/audit.jsonl")); diff != "" {
		t.Fatalf("file cursors (-want +got):\n%s", diff)
	}
}
