package auditstream

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

func TestSyslogMessage(t *testing.T) {
	for _, tc := range []struct {
		name, action, host string
		want               string
	}{
		{"notice", latchkey.ActionApplicationCreate, "lk-1", "<109>1 2026-12-04T18:00:01.123456Z lk-1 latchkey 42 application.create - "},
		{"canary alert", latchkey.ActionCanaryTriggered, "lk-1", "<105>1 2026-12-04T18:00:01.123456Z lk-1 latchkey 42 access_key.canary_triggered - "},
		{"exposed key", latchkey.ActionAccessKeyExposed, "lk-1", "<108>1 2026-12-04T18:00:01.123456Z lk-1 latchkey 42 access_key.exposed - "},
		{"no hostname", latchkey.ActionApplicationCreate, "", "<109>1 2026-12-04T18:00:01.123456Z - latchkey 42 application.create - "},
		{"hostname with a space and non-ASCII", latchkey.ActionApplicationCreate, "my hôst", "<109>1 2026-12-04T18:00:01.123456Z myhst latchkey 42 application.create - "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEvent("acme", 1)
			e.Action = tc.action
			e.Time = e.Time.In(time.FixedZone("X", 3600)) // written in UTC whatever the zone
			got := string(syslogMessage(e, tc.host, 42, []byte(`{"audit_event":{}}`)))
			if want := tc.want + `{"audit_event":{}}`; got != want {
				t.Fatalf("message\n got %q\nwant %q", got, want)
			}
		})
	}
	if got := headerField(strings.Repeat("a", 40), 32); len(got) != 32 {
		t.Fatalf("MSGID of 40 characters kept %d, want 32", len(got))
	}
}

// receiver is a syslog-over-TLS receiver that reads octet-counted frames.
type receiver struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
	conn []net.Conn
}

func newReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS() // for its certificate for 127.0.0.1
	t.Cleanup(hs.Close)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: hs.TLS.Certificates})
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{ln: ln}
	t.Cleanup(func() { ln.Close(); r.dropAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conn = append(r.conn, c)
			r.mu.Unlock()
			go r.read(c)
		}
	}()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return r, ca
}

func (r *receiver) read(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
		if err != nil {
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, string(msg))
		r.mu.Unlock()
	}
}

func (r *receiver) dropAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conn {
		c.Close()
	}
	r.conn = nil
}

func (r *receiver) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]string(nil), r.msgs...)
		r.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSyslogSinkOverTLS sends over TLS with the CA given, frames each
// message by its length, and dials again when the receiver dropped the
// connection between two writes.
func TestSyslogSinkOverTLS(t *testing.T) {
	r, ca := newReceiver(t)
	sinks, err := Open(Config{Sinks: []string{"syslog+tls://" + r.ln.Addr().String()}, SyslogCA: ca})
	if err != nil {
		t.Fatal(err)
	}
	sk := sinks[0]
	defer sk.Close()
	batch := func(from, to int) []*latchkey.AuditEvent {
		var out []*latchkey.AuditEvent
		for n := from; n <= to; n++ {
			e := testEvent("acme", n)
			e.Seq = int64(n)
			out = append(out, e)
		}
		return out
	}
	if err := sk.Write(t.Context(), batch(1, 3)); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 3)
	r.dropAll() // the receiver restarts
	time.Sleep(50 * time.Millisecond)
	if err := sk.Write(t.Context(), batch(4, 5)); err != nil {
		t.Fatalf("write after the receiver dropped the connection: %v", err)
	}
	got := r.wait(t, 5)
	if len(got) != 5 {
		t.Fatalf("receiver got %d messages, want 5", len(got))
	}
	for i, m := range got {
		head, body, ok := strings.Cut(m, " - ")
		if !ok || !strings.HasPrefix(head, "<109>1 ") {
			t.Fatalf("message %d %q is not RFC 5424 as sent", i, m)
		}
		var rec latchkey.AuditStreamRecord
		if err := json.Unmarshal([]byte(body), &rec); err != nil || rec.Event.Seq != int64(i+1) {
			t.Fatalf("message %d body %q: %v", i, body, err)
		}
	}
}

// TestSyslogSinkRefusesUnknownCA: a receiver whose certificate does not
// chain to --audit-syslog-ca gets nothing.
func TestSyslogSinkRefusesUnknownCA(t *testing.T) {
	r, _ := newReceiver(t)
	sinks, err := Open(Config{Sinks: []string{"syslog+tls://" + r.ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	err = sinks[0].Write(t.Context(), []*latchkey.AuditEvent{testEvent("acme", 1)})
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("write to a receiver with an unknown CA: %v, want a certificate error", err)
	}
}
