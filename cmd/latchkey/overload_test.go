package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var plainBin struct {
	once sync.Once
	path string
	err  error
}

// plainBinary builds latchkey without the race detector, which slows the
// server several times and multiplies its memory: the load tests measure
// the server as it ships.
func plainBinary(t *testing.T) string {
	t.Helper()
	plainBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "latchkey-plain")
		if err != nil {
			plainBin.err = err
			return
		}
		plainBin.path = filepath.Join(dir, "latchkey")
		if out, err := exec.Command("go", "build", "-o", plainBin.path, ".").CombinedOutput(); err != nil {
			plainBin.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if plainBin.err != nil {
		t.Fatalf("building latchkey: %v", plainBin.err)
	}
	return plainBin.path
}

// rssKiB returns a process's resident set size.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the server's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// TestOverload runs verification flat out against a real server (more
// concurrent clients than cores, each with keep-alive connections) and
// meanwhile makes management calls one after the other. Every management
// call must answer, within a bound; the server's memory must level off
// rather than grow with the number of requests; and afterwards it must
// stop cleanly on SIGTERM (nothing deadlocked).
func TestOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	home := t.TempDir()
	srv := startBinary(t, plainBinary(t), home, "--log-level", "warn", "--usage-flush-interval", "100ms")
	c := operatorClient(t, srv)
	var secrets []string
	for i := range 10 {
		app := fmt.Sprintf("load%d", i)
		c.do("POST", "/v1/applications", map[string]string{"name": app}, 201)
		k := c.do("POST", "/v1/applications/"+app+"/access-keys", map[string]string{}, 201)
		secrets = append(secrets, k["secret_access_key"].(string))
	}
	bodies := make([][]byte, len(secrets))
	for i, s := range secrets {
		bodies[i], _ = json.Marshal(map[string]string{"key": s, "ip": "192.0.2.1", "user_agent": "load/1"})
	}

	const duration = 6 * time.Second
	clients := 8 * runtime.NumCPU()
	ctx, cancel := context.WithTimeout(t.Context(), duration)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var verified, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for n := i; ctx.Err() == nil; n++ {
				req, _ := http.NewRequestWithContext(ctx, "POST", srv.endpoint+"/v1/verify", bytes.NewReader(bodies[n%len(bodies)]))
				req.Header.Set("Authorization", c.auth)
				req.Header.Set("Content-Type", "application/json")
				res, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == 200 {
					verified.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}

	// Memory, sampled through the run.
	var rss []int
	wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				rss = append(rss, rssKiB(t, srv.cmd.Process.Pid))
			}
		}
	})

	// Management calls, one at a time, under the load.
	mc := &client{t: t, endpoint: srv.endpoint, auth: c.auth}
	var lat []time.Duration
	started := time.Now()
	for i := 0; time.Since(started) < duration-time.Second; i++ {
		app := fmt.Sprintf("mgmt%d", i)
		for _, call := range []struct {
			method, path string
			body         any
			status       int
		}{
			{"POST", "/v1/applications", map[string]string{"name": app}, 201},
			{"POST", "/v1/applications/" + app + "/access-keys", map[string]string{}, 201},
			{"GET", "/v1/access-keys?application=" + app, nil, 200},
			{"GET", "/v1/audit-events?limit=10", nil, 200},
		} {
			t0 := time.Now()
			out := mc.do(call.method, call.path, call.body, call.status)
			lat = append(lat, time.Since(t0))
			if call.method == "POST" && strings.HasSuffix(call.path, "access-keys") {
				id := out["access_key_id"].(string)
				t0 = time.Now()
				mc.do("PATCH", "/v1/access-keys/"+id, map[string]string{"status": "Inactive"}, 200)
				mc.do("DELETE", "/v1/access-keys/"+id, nil, 204)
				lat = append(lat, time.Since(t0)/2, time.Since(t0)/2)
			}
		}
	}
	<-ctx.Done()
	wg.Wait()
	tr.CloseIdleConnections()

	slices.Sort(lat)
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	rate := float64(verified.Load()) / duration.Seconds()
	t.Logf("overload: %d clients on %d CPUs, %.0f verifications/s (%d failed); %d management calls: p50 %s, p99 %s, max %s; RSS %v KiB",
		clients, runtime.NumCPU(), rate, failed.Load(), len(lat), p50.Round(time.Millisecond), p99.Round(time.Millisecond),
		worst.Round(time.Millisecond), rss)
	if failed.Load() > 0 {
		t.Errorf("%d verifications failed under load", failed.Load())
	}
	if worst > 5*time.Second {
		t.Errorf("a management call took %s under load, want under 5s", worst)
	}
	// Memory levels off: the second half of the run may not add more
	// than 64 MiB over the first half's peak (it serves as many requests
	// again), and the whole stays under 512 MiB.
	if len(rss) >= 8 {
		half := len(rss) / 2
		first, second := slices.Max(rss[:half]), slices.Max(rss[half:])
		if second > first+64<<10 {
			t.Errorf("memory grows with requests: peak %d KiB in the first half, %d KiB in the second", first, second)
		}
		if second > 512<<10 {
			t.Errorf("RSS %d KiB under load, want under 512 MiB", second)
		}
	}
	c.do("GET", "/healthz", nil, 200)
	srv.stop() // a clean stop within 30s: no request or flush is stuck
}

// TestSlowClients opens many connections that never finish their request
// (slowloris: headers one byte at a time; or a body one byte at a time),
// and keep-alive connections left idle. A normal client must still be
// answered promptly, and the server must close each slow connection once
// its timeout passes. Header and body size limits answer 431 and 413.
func TestSlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("slow clients take seconds")
	}
	const readHeader, read, idle = time.Second, 3 * time.Second, 2 * time.Second
	srv := startBinary(t, plainBinary(t), t.TempDir(), "--log-level", "warn",
		"--read-header-timeout", readHeader.String(), "--read-timeout", read.String(), "--idle-timeout", idle.String())
	c := operatorClient(t, srv)
	addr := strings.TrimPrefix(srv.endpoint, "http://")
	baseRSS := rssKiB(t, srv.cmd.Process.Pid)

	type slow struct {
		conn   net.Conn
		opened time.Time
		closed atomic.Int64 // Unix nanoseconds when the server closed it
	}
	dial := func(first string) *slow {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		s := &slow{conn: conn, opened: time.Now()}
		if _, err := io.WriteString(conn, first); err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	// drip writes one byte every 100ms until the server closes the
	// connection, and notes when it did.
	drip := func(s *slow, b byte) {
		wg.Go(func() {
			go func() {
				_, _ = io.Copy(io.Discard, s.conn) // returns when the server closes
				s.closed.Store(time.Now().UnixNano())
			}()
			for ctx.Err() == nil && s.closed.Load() == 0 {
				if _, err := s.conn.Write([]byte{b}); err != nil {
					for s.closed.Load() == 0 && ctx.Err() == nil {
						time.Sleep(10 * time.Millisecond)
					}
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	const nHeader, nBody, nIdle = 400, 100, 100
	var headers, bodies, idles []*slow
	for range nHeader {
		s := dial("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		headers = append(headers, s)
		drip(s, 'a')
	}
	for range nBody {
		s := dial("POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: " + c.auth + "\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n")
		bodies = append(bodies, s)
		drip(s, ' ')
	}
	for range nIdle {
		s := dial("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(s.conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		s.opened = time.Now() // idle from here
		idles = append(idles, s)
		wg.Go(func() {
			_, _ = io.Copy(io.Discard, br)
			s.closed.Store(time.Now().UnixNano())
		})
	}

	// A normal client, meanwhile.
	var worst time.Duration
	for range 20 {
		t0 := time.Now()
		c.do("GET", "/v1/applications", nil, 200)
		c.do("POST", "/v1/verify", map[string]string{"key": "lksk_x"}, 200)
		worst = max(worst, time.Since(t0))
		time.Sleep(50 * time.Millisecond)
	}
	if worst > time.Second {
		t.Errorf("a normal client waited %s with %d slow connections open", worst, nHeader+nBody+nIdle)
	}
	rssSlow := rssKiB(t, srv.cmd.Process.Pid)

	// Every slow connection is closed by its timeout.
	// The slack is for a loaded 2-core CI machine: without the timeouts the
	// connections would stay open until the deadline, far past any limit.
	const slack = 3 * time.Second
	deadline := time.Now().Add(read + 2*slack)
	check := func(what string, conns []*slow, limit time.Duration) {
		t.Helper()
		var longest time.Duration
		for _, s := range conns {
			for s.closed.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			at := s.closed.Load()
			if at == 0 {
				t.Errorf("%s: a connection was still open after %s", what, time.Since(s.opened).Round(time.Millisecond))
				return
			}
			longest = max(longest, time.Unix(0, at).Sub(s.opened))
		}
		if longest > limit {
			t.Errorf("%s: closed after up to %s, want within %s", what, longest.Round(time.Millisecond), limit)
		}
		t.Logf("%d %s connections closed by the server after at most %s", len(conns), what, longest.Round(time.Millisecond))
	}
	check("header-dripping", headers, readHeader+slack)
	check("body-dripping", bodies, read+slack)
	check("idle keep-alive", idles, idle+slack)
	cancel()
	wg.Wait()
	t.Logf("RSS %d KiB before, %d KiB with %d slow connections open", baseRSS, rssSlow, nHeader+nBody+nIdle)

	// Limits.
	big := strings.Repeat("b", 64<<10)
	conn := dialRaw(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n")
	if res := readResponse(t, conn); res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", res.StatusCode)
	}
	// A 2 MiB body: the server answers once it has read 1 MiB and hangs
	// up, so the body is written while the answer is read.
	body := `{"name":"x","description":"` + strings.Repeat("d", 2<<20) + `"}`
	conn = dialRaw(t, addr, fmt.Sprintf("POST /v1/applications HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", c.auth, len(body)))
	go func() { _, _ = io.WriteString(conn, body) }()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("2 MiB body: %v", err)
	}
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(res.Body).Decode(&eb)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || eb.Error.Code != "PayloadTooLarge" {
		t.Errorf("2 MiB body: %d %s, want 413 PayloadTooLarge", res.StatusCode, eb.Error.Code)
	}
	c.do("GET", "/healthz", nil, 200)
	srv.stop()
}

func dialRaw(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	return conn
}

func readResponse(t *testing.T, conn net.Conn) *http.Response {
	t.Helper()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	res.Body.Close()
	return res
}
