package auditstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/sqlite"
)

var t0 = time.Date(2026, 12, 4, 18, 0, 0, 123456000, time.UTC)

func testEvent(account string, n int) *latchkey.AuditEvent {
	return &latchkey.AuditEvent{Time: t0.Add(time.Duration(n) * time.Second), Account: account, Actor: "alice",
		Action: latchkey.ActionApplicationCreate, TargetType: "application", Target: fmt.Sprintf("app-%d", n),
		After: json.RawMessage(fmt.Sprintf(`{"name":"app-%d"}`, n))}
}

func openSQLite(t *testing.T) latchkey.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T) latchkey.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendEvents(t *testing.T, s latchkey.Store, account string, from, to int) {
	t.Helper()
	for n := from; n <= to; n++ {
		e := testEvent(account, n)
		if err := s.Update(t.Context(), func(tx latchkey.Tx) error { return tx.AppendAudit(t.Context(), e) }); err != nil {
			t.Fatal(err)
		}
	}
}

// memSink keeps what it took; it fails while down is set.
type memSink struct {
	name string
	mu   sync.Mutex
	down bool
	got  []*latchkey.AuditEvent
}

func (m *memSink) Name() string { return m.name }
func (m *memSink) Close() error { return nil }
func (m *memSink) Write(_ context.Context, evs []*latchkey.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("sink down")
	}
	m.got = append(m.got, evs...)
	return nil
}

func (m *memSink) seqs(account string) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for _, e := range m.got {
		if e.Account == account {
			out = append(out, e.Seq)
		}
	}
	return out
}

type obs struct {
	mu       sync.Mutex
	backlog  map[string]int64
	sent     int
	failures int
}

func (o *obs) AuditStreamed(_ string, n int) { o.mu.Lock(); o.sent += n; o.mu.Unlock() }
func (o *obs) AuditStreamFailed(string)      { o.mu.Lock(); o.failures++; o.mu.Unlock() }
func (o *obs) AuditStreamBacklog(s string, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.backlog == nil {
		o.backlog = map[string]int64{}
	}
	o.backlog[s] = n
}

func wantSeqs(t *testing.T, got []int64, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("sink got seqs %v, want 1..%d", got, n)
	}
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("sink got seqs %v, want 1..%d in order", got, n)
		}
	}
}

// TestStreamerDownThenBack: events committed while the sink is down wait
// (the writes are not held up), are counted as backlog, and all arrive in
// order once it is back; nothing is sent twice when nothing failed after
// the write.
func TestStreamerDownThenBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(*testing.T) latchkey.Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := t.Context()
			sink := &memSink{name: "mem", down: true}
			o := &obs{}
			st := New(s, []Sink{sink}, nil)
			st.Observe, st.Batch = o, 4
			appendEvents(t, s, "acme", 1, 5)
			appendEvents(t, s, "zeta", 1, 2)
			if _, err := st.RunOnce(ctx, sink); err == nil {
				t.Fatal("RunOnce with the sink down: no error")
			}
			if o.backlog["mem"] != 7 {
				t.Fatalf("backlog %d, want 7", o.backlog["mem"])
			}
			appendEvents(t, s, "acme", 6, 9) // writes go on while the sink is down
			sink.down = false
			for range 10 {
				n, err := st.RunOnce(ctx, sink)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
			wantSeqs(t, sink.seqs("acme"), 9)
			wantSeqs(t, sink.seqs("zeta"), 2)
			if o.backlog["mem"] != 0 || o.sent != 11 {
				t.Fatalf("backlog %d, sent %d; want 0 and 11", o.backlog["mem"], o.sent)
			}
		})
	}
}

// TestStreamerLease: two replicas with the same sink; only the lease
// holder sends, and the other takes over once the holder releases it.
func TestStreamerLease(t *testing.T) {
	s := openSQLite(t)
	ctx := t.Context()
	a, b := &memSink{name: "shared"}, &memSink{name: "shared"}
	sa, sb := New(s, []Sink{a}, nil), New(s, []Sink{b}, nil)
	appendEvents(t, s, "acme", 1, 3)
	if n, err := sa.RunOnce(ctx, a); err != nil || n != 3 {
		t.Fatalf("holder: sent %d, %v; want 3", n, err)
	}
	appendEvents(t, s, "acme", 4, 5)
	if n, err := sb.RunOnce(ctx, b); err != nil || n != 0 {
		t.Fatalf("other replica while the lease is held: sent %d, %v; want 0", n, err)
	}
	if err := s.Update(ctx, func(tx latchkey.Tx) error { return tx.ReleaseAuditSink(ctx, "shared", sa.Holder) }); err != nil {
		t.Fatal(err)
	}
	if n, err := sb.RunOnce(ctx, b); err != nil || n != 2 {
		t.Fatalf("other replica after the release: sent %d, %v; want 2", n, err)
	}
	if got := b.seqs("acme"); len(got) != 2 || got[0] != 4 {
		t.Fatalf("the second replica sent %v, want [4 5]: the cursor is shared", got)
	}
}

// TestStreamerRunWakes: Run sends a commit at once when woken, long
// before its poll.
func TestStreamerRunWakes(t *testing.T) {
	s := openSQLite(t)
	sink := &memSink{name: "mem"}
	st := New(s, []Sink{sink}, nil)
	st.Poll = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); st.Run(ctx) }()
	appendEvents(t, s, "acme", 1, 1)
	st.Wake()
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.seqs("acme")) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	wantSeqs(t, sink.seqs("acme"), 1)
}

func TestFileSinkRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "audit.jsonl")
	sinks, err := Open(Config{Sinks: []string{"file:" + path}, FileMaxBytes: 1 << 20, FileKeep: 2})
	if err != nil {
		t.Fatal(err)
	}
	fs := sinks[0].(*fileSink)
	fs.maxBytes = 600 // a few events per file
	for n := 1; n <= 20; n++ {
		e := testEvent("acme", n)
		e.Seq = int64(n)
		if err := fs.Write(t.Context(), []*latchkey.AuditEvent{e}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s.3 exists (or %v): only 2 rotated files are kept", path, err)
	}
	// The newest events are in PATH, the ones before in PATH.1, then
	// PATH.2: read oldest first, they are consecutive and end at 20.
	var seqs []int64
	for _, p := range []string{path + ".2", path + ".1", path} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		if st.Size() > 600 {
			t.Errorf("%s is %d bytes, above the 600 it rotates at", p, st.Size())
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r latchkey.AuditStreamRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Event == nil {
				t.Fatalf("%s: line %q is not an audit record: %v", p, sc.Text(), err)
			}
			seqs = append(seqs, r.Event.Seq)
		}
		f.Close()
	}
	if len(seqs) < 3 || seqs[len(seqs)-1] != 20 {
		t.Fatalf("seqs across the files %v; want a run ending at 20", seqs)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("seqs across the files %v are not consecutive", seqs)
		}
	}
}

func TestStdoutSinkWritesRecords(t *testing.T) {
	var buf bytes.Buffer
	sinks, err := Open(Config{Sinks: []string{"stdout"}, Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	e := testEvent("acme", 1)
	e.Seq, e.Hash = 1, latchkey.AuditEventHash(e, 1)
	if err := sinks[0].Write(t.Context(), []*latchkey.AuditEvent{e, e}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %q", len(lines), buf.String())
	}
	var r latchkey.AuditStreamRecord
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	if p := latchkey.VerifyAuditChain("acme", []*latchkey.AuditEvent{r.Event}, nil, nil, nil); len(p) != 0 {
		t.Fatalf("the streamed record does not verify: %v", p)
	}
}

func TestOpenRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"unknown scheme", Config{Sinks: []string{"udp://x"}}, "expected stdout, file:PATH or syslog+tls://"},
		{"plain syslog", Config{Sinks: []string{"syslog://siem:514"}}, "expected stdout"},
		{"twice", Config{Sinks: []string{"stdout", "stdout"}}, "given twice"},
		{"file without a path", Config{Sinks: []string{"file:"}, FileMaxBytes: 1 << 20}, "expected file:PATH"},
		{"file too small", Config{Sinks: []string{"file:/tmp/x"}, FileMaxBytes: 10}, "--audit-file-max-mb"},
		{"syslog with a user", Config{Sinks: []string{"syslog+tls://u:p@siem:6514"}}, "no path, user or query"},
		{"syslog with a path", Config{Sinks: []string{"syslog+tls://siem:6514/x"}}, "no path, user or query"},
		{"syslog bad port", Config{Sinks: []string{"syslog+tls://siem:99999"}}, "expected syslog+tls://HOST[:PORT]"},
		{"syslog missing CA", Config{Sinks: []string{"syslog+tls://siem"}, SyslogCA: "/nonexistent/ca.pem"}, "--audit-syslog-ca"},
		{"cert without key", Config{Sinks: []string{"syslog+tls://siem"}, SyslogCert: "c.pem"}, "go together"},
		{"CA without syslog", Config{Sinks: []string{"stdout"}, SyslogCA: "ca.pem"}, "need an --audit-sink syslog+tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
