package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/sqlite"
)

// rsyslog is a Debian rsyslogd receiving syslog over TLS (imtcp with the
// gtls stream driver) and writing each message's MSG, the audit record,
// to a JSON lines file, and its RFC 5424 header fields to another.
type rsyslog struct {
	t                *testing.T
	dir, addr        string
	records, headers string
	cmd              *exec.Cmd
	exited           chan struct{}
	stderr           *syncBuffer
}

func requireRsyslog(t *testing.T) {
	t.Helper()
	requireBinary(t, "/usr/sbin/rsyslogd", "rsyslog")
	if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
		requireBinary(t, "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so", "rsyslog-gnutls")
	}
}

// newRsyslog writes the receiver's configuration, with certPath and
// keyPath as its certificate, on addr; start starts it.
func newRsyslog(t *testing.T, addr, certPath, keyPath string) *rsyslog {
	t.Helper()
	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(addr)
	r := &rsyslog{t: t, dir: dir, addr: addr, records: filepath.Join(dir, "audit.jsonl"), headers: filepath.Join(dir, "headers.txt")}
	conf := fmt.Sprintf(`global(workDirectory=%[1]q maxMessageSize="64k"
  defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile=%[2]q
  defaultNetstreamDriverCertFile=%[2]q defaultNetstreamDriverKeyFile=%[3]q)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port=%[4]q)
template(name="record" type="string" string="%%msg%%\n")
template(name="header" type="string" string="%%pri%% %%protocol-version%% %%timereported:::date-rfc3339%% %%app-name%% %%procid%% %%msgid%% %%structured-data%%\n")
action(type="omfile" file=%[5]q template="record")
action(type="omfile" file=%[6]q template="header")
`, dir, certPath, keyPath, port, r.records, r.headers)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rsyslog) start() {
	r.t.Helper()
	r.stderr = &syncBuffer{}
	r.cmd = exec.Command("/usr/sbin/rsyslogd", "-n", "-f", filepath.Join(r.dir, "rsyslog.conf"), "-i", filepath.Join(r.dir, "rsyslog.pid"))
	r.cmd.Stdout, r.cmd.Stderr = r.stderr, r.stderr
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	r.t.Cleanup(r.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-r.exited:
			r.t.Fatalf("rsyslogd exited at start:\n%s", r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("rsyslogd does not listen on %s:\n%s", r.addr, r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops rsyslogd with SIGTERM (it writes out what it holds).
func (r *rsyslog) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

// received returns the audit records rsyslog wrote, by account and seq,
// and how many lines in all.
func (r *rsyslog) received() (map[string]map[int64]bool, int) {
	r.t.Helper()
	got := map[string]map[int64]bool{}
	f, err := os.Open(r.records)
	if os.IsNotExist(err) {
		return got, 0
	}
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
		var rec latchkey.AuditStreamRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Event == nil {
			r.t.Fatalf("rsyslog wrote a line that is not an audit record: %q (%v)", sc.Text(), err)
		}
		if got[rec.Event.Account] == nil {
			got[rec.Event.Account] = map[int64]bool{}
		}
		got[rec.Event.Account][rec.Event.Seq] = true
	}
	return got, n
}

// streamMetric reads one audit stream series (its only sink's) from
// /metrics; -1 when it is not there.
func streamMetric(t *testing.T, endpoint, name string) int {
	t.Helper()
	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + `\{sink="syslog\+tls://[^"]+"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func backlog(t *testing.T, endpoint string) int {
	return streamMetric(t, endpoint, "latchkey_audit_stream_backlog")
}

// TestAuditStreamToRsyslog streams the audit log to Debian's rsyslog over
// TLS. While rsyslog is down, management writes go on at their usual pace
// and the backlog grows; once it is up the backlog drains. latchkey is then
// killed with SIGKILL in the middle of a stream of writes and restarted,
// more writes follow, and rsyslog must have every event of the chain
// (repeats allowed, none missing), its RFC 5424 header as sent, and a copy
// that latchkey audit verify --file finds clean.
func TestAuditStreamToRsyslog(t *testing.T) {
	requireRsyslog(t)
	dir := t.TempDir()
	certPath, keyPath, _ := writeCert(t, dir)
	rs := newRsyslog(t, freeAddr(t), certPath, keyPath)
	home, db := t.TempDir(), filepath.Join(dir, "latchkey.db")
	args := []string{"--database-url", "sqlite:" + db, "--audit-sink", "syslog+tls://" + rs.addr,
		"--audit-syslog-ca", certPath, "--audit-stream-lease", "2s"}
	srv := startServer(t, home, args...)
	f, err := credfile.Read(filepath.Join(home, ".latchkey", "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.Profile("default")[credfile.KeySecretAccessKey]
	c := &client{t: t, endpoint: srv.endpoint, auth: auth}

	// rsyslog down: writes are not held up, the backlog grows.
	var slowest time.Duration
	for i := range 20 {
		start := time.Now()
		c.do("POST", "/v1/applications", map[string]string{"name": fmt.Sprintf("down-%d", i)}, 201)
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("slowest of 20 writes with the syslog receiver down: %s", slowest.Round(time.Millisecond))
	if slowest > 2*time.Second {
		t.Errorf("a write took %s while the syslog receiver was down; writes must not wait for a sink", slowest)
	}
	waitFor(t, 10*time.Second, "the backlog to show the waiting events", func() bool { return backlog(t, srv.endpoint) >= 20 })

	// rsyslog up: the backlog drains (the streamer retries with backoff,
	// at most a minute apart; the first retries are seconds apart).
	rs.start()
	waitFor(t, 60*time.Second, "the backlog to drain", func() bool { return backlog(t, srv.endpoint) == 0 })
	if f, n := streamMetric(t, srv.endpoint, "latchkey_audit_stream_failures_total"), streamMetric(t, srv.endpoint, "latchkey_audit_stream_events_total"); f < 1 || n < 23 {
		t.Errorf("after the outage: %d failures and %d events streamed counted; want at least 1 and 23", f, n)
	}

	// SIGKILL in the middle of writes, then a restart.
	var (
		acked atomic.Int64
		wg    sync.WaitGroup
		stop  atomic.Bool
	)
	for w := range 3 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				body := strings.NewReader(fmt.Sprintf(`{"name":"kill-%d-%d"}`, w, i))
				req, _ := http.NewRequest("POST", srv.endpoint+"/v1/applications", body)
				req.Header.Set("Authorization", auth)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // killed
				}
				resp.Body.Close()
				if resp.StatusCode == 201 {
					acked.Add(1)
				}
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	stop.Store(true)
	wg.Wait()
	srv = startServer(t, home, args...)
	c.endpoint = srv.endpoint
	for i := range 20 {
		c.do("POST", "/v1/applications", map[string]string{"name": fmt.Sprintf("after-%d", i)}, 201)
	}
	waitFor(t, 60*time.Second, "the backlog to drain after the restart", func() bool { return backlog(t, srv.endpoint) == 0 })
	srv.stop()

	// Every event of the chain reached rsyslog.
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	n := rs.checkReceived(st)
	if n < 40+int(acked.Load()) {
		t.Fatalf("%d events in the chain, fewer than the %d writes acknowledged", n, 40+acked.Load())
	}
	t.Logf("%d writes acknowledged around the SIGKILL", acked.Load())

	// The header as rsyslog's RFC 5424 parser read it.
	hb, err := os.ReadFile(rs.headers)
	if err != nil {
		t.Fatal(err)
	}
	hdr := regexp.MustCompile(`^109 1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|\+00:00) latchkey \d+ [a-z_.]+ -$`)
	for i, l := range strings.Split(strings.TrimSpace(string(hb)), "\n") {
		if !hdr.MatchString(l) {
			t.Fatalf("header %d as rsyslog parsed it: %q", i, l)
		}
	}

	// The copy verified (checkReceived); a line repeated whole counts
	// once, an edited one is named.
	rb, _ := os.ReadFile(rs.records)
	first, _, _ := strings.Cut(string(rb), "\n")
	repeated := filepath.Join(dir, "repeated.jsonl")
	if err := os.WriteFile(repeated, append(rb, first+"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runLatchkey(t, binPath, "audit", "verify", "--file", repeated); code != 0 {
		t.Fatalf("audit verify --file with a repeated line: exit %d\n%s", code, out)
	}
	if err := os.WriteFile(repeated, append(rb, strings.Replace(first, `"actor":"system"`, `"actor":"mallory"`, 1)+"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runLatchkey(t, binPath, "audit", "verify", "--file", repeated); code != 1 || !strings.Contains(out, "event seq 1") {
		t.Fatalf("audit verify --file with a second, different event at seq 1: exit %d, want 1 naming it\n%s", code, out)
	}
}

// checkReceived reads the default account's chain from store (and closes
// it) and fails the test unless rsyslog received every event of it. It
// returns the chain's length.
func (r *rsyslog) checkReceived(st latchkey.Store) int {
	r.t.Helper()
	var chain []*latchkey.AuditEvent
	ctx := context.Background()
	err := st.View(ctx, func(tx latchkey.Tx) error {
		for after := int64(0); ; {
			page, err := tx.ListAuditChain(ctx, latchkey.DefaultAccount, after, 1000)
			if err != nil || len(page) == 0 {
				return err
			}
			chain = append(chain, page...)
			after = page[len(page)-1].Seq
		}
	})
	st.Close()
	if err != nil {
		r.t.Fatal(err)
	}
	got, lines := r.received()
	var missing []int64
	for _, e := range chain {
		if !got[e.Account][e.Seq] {
			missing = append(missing, e.Seq)
		}
	}
	r.t.Logf("%d events in the chain, %d lines at rsyslog (%d repeats)", len(chain), lines, lines-len(chain))
	if len(missing) > 0 {
		r.t.Fatalf("rsyslog is missing seqs %v of the %d in the chain\nrsyslog:\n%s", missing, len(chain), r.stderr)
	}
	if out, code := runLatchkey(r.t, binPath, "audit", "verify", "--file", r.records); code != 0 || !strings.Contains(out, "clean") {
		r.t.Fatalf("audit verify --file on rsyslog's copy: exit %d\n%s", code, out)
	}
	return len(chain)
}

// TestAuditStreamReplicasPostgres streams from three replicas on one
// PostgreSQL database, all writing, and kills one with SIGKILL in the
// middle of each round, the lease holder or another, restarting it:
// rsyslog must get every event of the chain.
func TestAuditStreamReplicasPostgres(t *testing.T) {
	requireRsyslog(t)
	dir := t.TempDir()
	certPath, keyPath, _ := writeCert(t, dir)
	rs := newRsyslog(t, freeAddr(t), certPath, keyPath)
	rs.start()
	dbURL := newPGDatabase(t)
	c := startCluster(t, dbURL, 3, "--audit-sink", "syslog+tls://"+rs.addr, "--audit-syslog-ca", certPath, "--audit-stream-lease", "2s")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 12))
	var acked atomic.Int64
	for round := range 5 {
		var (
			stop atomic.Bool
			wg   sync.WaitGroup
		)
		for w := range len(c.replicas) {
			r := c.replicas[w]
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					st, _, err := c.call(r, "POST", "/v1/applications", c.admin, map[string]string{"name": fmt.Sprintf("r%d-w%d-%d", round, w, i)})
					if err != nil {
						return // killed
					}
					if st == 201 {
						acked.Add(1)
					}
				}
			})
		}
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		victim := rng.IntN(len(c.replicas))
		if err := c.replicas[victim].cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-c.replicas[victim].exited
		stop.Store(true)
		wg.Wait()
		c.replace(victim)
	}
	for _, r := range c.replicas {
		waitFor(t, 60*time.Second, "the backlog to drain", func() bool { return backlog(t, r.endpoint) == 0 })
	}
	st, err := postgres.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if n := rs.checkReceived(st); n < int(acked.Load()) {
		t.Fatalf("%d events in the chain, fewer than the %d writes acknowledged", n, acked.Load())
	}
	t.Logf("5 rounds, %d writes acknowledged", acked.Load())
}

// replace starts a replica in the place of replica victim, which has
// exited, and waits until it is ready.
func (c *cluster) replace(victim int) {
	c.t.Helper()
	i := c.start()
	c.replicas[victim] = c.replicas[i]
	c.replicas = c.replicas[:i]
	c.waitReady(c.replicas[victim], 30*time.Second)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRsyslogConfigAsDocumented: the rsyslog receiver of
// docs/operations.md passes rsyslogd's own configuration check, with its
// certificate paths pointed at files made here.
func TestRsyslogConfigAsDocumented(t *testing.T) {
	requireRsyslog(t)
	b, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, conf, ok := strings.Cut(string(b), "## Audit streaming\n")
	if ok {
		_, conf, ok = strings.Cut(conf, "```\nglobal(")
	}
	if ok {
		conf, _, ok = strings.Cut("global("+conf, "```\n")
	}
	if !ok {
		t.Fatalf("%s has no rsyslog configuration under Audit streaming", operationsDoc)
	}
	dir := t.TempDir()
	certPath, keyPath, _ := writeCert(t, dir)
	conf = strings.NewReplacer(`"/etc/rsyslog.d/tls/ca.pem"`, strconv.Quote(certPath), `"/etc/rsyslog.d/tls/siem.pem"`, strconv.Quote(certPath),
		`"/etc/rsyslog.d/tls/siem.key"`, strconv.Quote(keyPath), "/var/log/latchkey/", dir+"/").Replace(conf)
	if strings.Contains(conf, "/etc/rsyslog.d/tls/") {
		t.Fatalf("the documented configuration names certificate files this test does not know:\n%s", conf)
	}
	path := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/usr/sbin/rsyslogd", "-N1", "-f", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "End of config validation run") || strings.Contains(string(out), "error") {
		t.Fatalf("rsyslogd -N1 on the documented configuration: %v\n%s\n%s", err, out, conf)
	}
}
