// Command tenmillion measures latchkey serve on a database of ten million
// keys (or -keys): start-up to ready (exec to /readyz 200), resident memory
// through start-up and afterwards, and on PostgreSQL the latency of
// verification while the change feed resyncs the whole index.
//
// It seeds the database once (prepared INSERTs in large transactions on
// SQLite, COPY on PostgreSQL: the API would take hours), gives -hot keys
// new secrets held only in this process, then, in rounds, starts each
// binary in turn (-before, then -latchkey) and measures it:
//
//	go run ./bench/tenmillion -store sqlite -keys 10000000 -latchkey /tmp/lk -before /tmp/lk-before
//	go run ./bench/tenmillion -store postgres -keys 10000000 -latchkey /tmp/lk -resyncs 2
//
// With -reuse it measures a database an earlier run seeded (and left with
// -keep), instead of seeding one.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

type config struct {
	store, dir, pgURL, pgName string
	keys, hot, rounds         int
	bins                      []string
	reuse, keep               bool
	resyncs                   int
	rate                      int
	settle, watch, window     time.Duration
	gctrace                   bool
	watchRate                 int
	serveArgs                 []string
}

func main() {
	var c config
	var after, before string
	flag.StringVar(&c.store, "store", "sqlite", "sqlite or postgres")
	flag.IntVar(&c.keys, "keys", 10_000_000, "application keys in the database (two per application)")
	flag.IntVar(&c.hot, "hot", 10_000, "keys given secrets for the verification load")
	flag.IntVar(&c.rounds, "rounds", 1, "rounds; each starts every binary once")
	flag.StringVar(&after, "latchkey", "", "latchkey binary to measure (required)")
	flag.StringVar(&before, "before", "", "another latchkey binary, started before -latchkey in every round")
	flag.StringVar(&c.dir, "dir", "/tmp/tenmillion", "directory for the SQLite database and serve's home")
	flag.StringVar(&c.pgURL, "postgres-url", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server on which the database -postgres-db is made")
	flag.StringVar(&c.pgName, "postgres-db", "tenmillion", "PostgreSQL database to seed and measure")
	flag.BoolVar(&c.reuse, "reuse", false, "measure the database an earlier run left (-keep) instead of seeding")
	flag.BoolVar(&c.keep, "keep", false, "keep the database afterwards")
	flag.IntVar(&c.resyncs, "resyncs", 1, "PostgreSQL: full resyncs (NOTIFY latchkey_keys, '*') measured per start, each with a window without one before it")
	flag.IntVar(&c.rate, "rate", 1000, "PostgreSQL: verifications a second (GET /v1/authorize) during the resync windows")
	flag.DurationVar(&c.settle, "settle", 10*time.Second, "how long RSS is sampled after ready before the resyncs")
	flag.DurationVar(&c.window, "window", 10*time.Second, "PostgreSQL: length of the window without a resync before each resync")
	flag.DurationVar(&c.watch, "watch", 0, "how long RSS is sampled after the resyncs (the hygiene policy round runs from start-up)")
	flag.IntVar(&c.watchRate, "watch-rate", 0, "verifications a second (GET /v1/authorize) during -watch (0: none)")
	flag.BoolVar(&c.gctrace, "gctrace", false, "run serve with GODEBUG=gctrace=1 and report its collections (cycles, mark CPU) in each window")
	flag.Func("serve-arg", "an argument added to serve's command line (repeatable), e.g. -serve-arg=--pprof", func(s string) error {
		c.serveArgs = append(c.serveArgs, s)
		return nil
	})
	flag.Parse()
	if after == "" {
		fmt.Fprintln(os.Stderr, "tenmillion: -latchkey is required")
		os.Exit(2)
	}
	if before != "" {
		c.bins = append(c.bins, before)
	}
	c.bins = append(c.bins, after)
	if err := run(context.Background(), &c); err != nil {
		fmt.Fprintln(os.Stderr, "tenmillion:", err)
		os.Exit(1)
	}
}

func (c *config) dbURL() string {
	if c.store == "sqlite" {
		return "sqlite:" + filepath.Join(c.dir, "latchkey.db")
	}
	u, err := url.Parse(c.pgURL)
	if err != nil {
		return c.pgURL
	}
	u.Path = "/" + c.pgName
	return u.String()
}

func run(ctx context.Context, c *config) error {
	fmt.Printf("# bench/tenmillion %s, %d keys, %s\n", c.store, c.keys, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Printf("load average before: %s\n", loadavg())
	if !c.reuse {
		start := time.Now()
		if err := c.create(ctx); err != nil {
			return err
		}
		var err error
		if c.store == "sqlite" {
			err = seedSQLite(ctx, strings.TrimPrefix(c.dbURL(), "sqlite:"), c.keys)
		} else {
			err = seedPostgres(ctx, c.dbURL(), c.keys)
		}
		if err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
		fmt.Printf("seeded %d keys in %s\n", c.keys, time.Since(start).Round(time.Second))
	}
	if !c.keep {
		defer c.drop(context.Background())
	}
	secrets, err := hotSecrets(ctx, c.dbURL(), c.keys, c.hot)
	if err != nil {
		return fmt.Errorf("hot keys: %w", err)
	}
	for r := range c.rounds {
		for _, bin := range c.bins {
			fmt.Printf("\n## round %d, %s\n", r+1, bin)
			if err := c.measure(ctx, bin, secrets); err != nil {
				return err
			}
		}
	}
	fmt.Printf("\nload average after: %s\n", loadavg())
	return nil
}

func (c *config) create(ctx context.Context) error {
	if c.store == "sqlite" {
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return err
		}
		for _, f := range []string{"latchkey.db", "latchkey.db-wal", "latchkey.db-shm"} {
			_ = os.Remove(filepath.Join(c.dir, f))
		}
		return nil
	}
	conn, err := pgx.Connect(ctx, c.pgURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{c.pgName}.Sanitize()+` WITH (FORCE)`); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{c.pgName}.Sanitize())
	return err
}

func (c *config) drop(ctx context.Context) {
	if c.store == "sqlite" {
		for _, f := range []string{"latchkey.db", "latchkey.db-wal", "latchkey.db-shm"} {
			_ = os.Remove(filepath.Join(c.dir, f))
		}
		return
	}
	conn, err := pgx.Connect(ctx, c.pgURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dropping:", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{c.pgName}.Sanitize()+` WITH (FORCE)`); err != nil {
		fmt.Fprintln(os.Stderr, "dropping:", err)
	}
}

var resyncRE = regexp.MustCompile(`key index resynced.*duration=(\S+)`)

// measure starts bin on the database and reports what it measured.
func (c *config) measure(ctx context.Context, bin string, secrets []string) error {
	home := filepath.Join(c.dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--addr", addr, "--database-url", c.dbURL(),
		"--credentials-file", filepath.Join(home, "credentials"), "--log-level", "info", "--trusted-proxies", "127.0.0.1")
	cmd.Args = append(cmd.Args, c.serveArgs...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME=", "LATCHKEY_SHARED_CREDENTIALS_FILE=")
	gc := &gcTrace{}
	if c.gctrace {
		cmd.Env = append(cmd.Env, "GODEBUG=gctrace=1")
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var logMu sync.Mutex
	var logBuf strings.Builder
	resynced := make(chan string, 16)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); pw.Close(); close(exited) }()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if gc.line(line) {
				continue
			}
			logMu.Lock()
			logBuf.WriteString(line + "\n")
			logMu.Unlock()
			if m := resyncRE.FindStringSubmatch(line); m != nil {
				select {
				case resynced <- m[1]:
				default:
				}
			}
		}
	}()
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid
	smp := &sampler{pid: pid}
	stopSampling := smp.start()
	defer stopSampling()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var ready time.Duration
	for {
		select {
		case <-exited:
			logMu.Lock()
			defer logMu.Unlock()
			return fmt.Errorf("%s exited before ready:\n%s", bin, logBuf.String())
		default:
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("%s not ready after 10 minutes", bin)
		}
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ready = time.Since(start)
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cpuReady := procCPU(pid)
	rssReady := procStatus(pid, "VmRSS:")
	peakReady := procStatus(pid, "VmHWM:")
	fmt.Printf("start-up: exec to /readyz 200 in %.2fs (CPU %.2fs); RSS at ready %s, peak %s (%.0f and %.0f bytes per key)\n",
		ready.Seconds(), cpuReady.Seconds(), mib(rssReady), mib(peakReady), float64(rssReady)/float64(c.keys), float64(peakReady)/float64(c.keys))
	logMu.Lock()
	for _, l := range strings.Split(logBuf.String(), "\n") {
		if strings.Contains(l, "index loaded") || strings.Contains(l, "key index resynced") || strings.Contains(l, "garbage to the system") {
			fmt.Println("  log:", l)
		}
	}
	logMu.Unlock()
	if c.gctrace {
		fmt.Println("  start-up", gc.take())
	}

	time.Sleep(c.settle)
	rss := procStatus(pid, "VmRSS:")
	fmt.Printf("after %s: RSS %s (%.0f bytes per key), peak so far %s\n", c.settle, mib(rss), float64(rss)/float64(c.keys), mib(procStatus(pid, "VmHWM:")))
	if c.gctrace {
		fmt.Println("  ", gc.take())
	}

	if c.store == "postgres" && c.resyncs > 0 {
		// Drain resyncs logged during start-up (the watcher's first load).
	drain:
		for {
			select {
			case <-resynced:
			default:
				break drain
			}
		}
		for i := range c.resyncs {
			cpuBase := procCPU(pid)
			base := drive(client, addr, secrets, c.rate, func(stop <-chan struct{}) { time.Sleep(c.window) })
			cpuBase = procCPU(pid) - cpuBase
			gcBase := gc.take()
			smp.reset()
			cpu0 := procCPU(pid)
			var took string
			during := drive(client, addr, secrets, c.rate, func(stop <-chan struct{}) {
				if err := notifyResync(ctx, c.dbURL()); err != nil {
					fmt.Println("NOTIFY:", err)
					return
				}
				select {
				case took = <-resynced:
				case <-time.After(10 * time.Minute):
					took = "timeout"
				}
			})
			cpu := procCPU(pid) - cpu0
			lo, hi := smp.window()
			fmt.Printf("resync %d: took %s (server CPU %.1fs incl. the load); RSS during it %s to %s (before it %s)\n",
				i+1, took, cpu.Seconds(), mib(lo), mib(hi), mib(rss))
			fmt.Printf("  verify without resync: %s (server CPU %.1fs)\n", base, cpuBase.Seconds())
			fmt.Printf("  verify during resync:  %s\n", during)
			if c.gctrace {
				fmt.Println("  without resync,", gcBase)
				fmt.Println("  during resync,", gc.take())
			}
			rss = procStatus(pid, "VmRSS:")
			// A resync must not drop a key, even for a moment.
			if base.errors+during.errors > 0 {
				return fmt.Errorf("resync %d: %d verifications failed", i+1, base.errors+during.errors)
			}
		}
	}
	if c.watch > 0 {
		smp.reset()
		cpu0 := procCPU(pid)
		if c.watchRate > 0 {
			l := drive(client, addr, secrets, c.watchRate, func(stop <-chan struct{}) { time.Sleep(c.watch) })
			fmt.Printf("  verify during the watch: %s\n", l)
		} else {
			time.Sleep(c.watch)
		}
		lo, hi := smp.window()
		fmt.Printf("over the next %s: RSS %s to %s (%.0f to %.0f bytes per key), now %s; server CPU %.1fs\n", c.watch, mib(lo), mib(hi),
			float64(lo)/float64(c.keys), float64(hi)/float64(c.keys), mib(procStatus(pid, "VmRSS:")), (procCPU(pid) - cpu0).Seconds())
		if c.gctrace {
			fmt.Println("  ", gc.take())
		}
	}
	fmt.Printf("peak RSS of the process (VmHWM): %s\n", mib(procStatus(pid, "VmHWM:")))
	logMu.Lock()
	for _, l := range strings.Split(logBuf.String(), "\n") {
		if strings.Contains(l, "hygiene") || strings.Contains(l, "level=ERROR") || (strings.Contains(l, "level=WARN") && !strings.Contains(l, "not ready")) {
			fmt.Println("  log:", l)
		}
	}
	logMu.Unlock()
	return nil
}

func notifyResync(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `NOTIFY latchkey_keys, '*'`)
	return err
}

// latencies summarises one window of open-loop verification.
type latencies struct {
	d      []time.Duration
	errors int64
}

func (l latencies) String() string {
	if len(l.d) == 0 {
		return "no calls"
	}
	slices.Sort(l.d)
	q := func(p float64) time.Duration { return l.d[min(len(l.d)-1, int(p*float64(len(l.d))))] }
	return fmt.Sprintf("%d calls, p50 %s, p99 %s, p99.9 %s, max %s, errors %d", len(l.d),
		q(0.5).Round(time.Microsecond), q(0.99).Round(time.Microsecond), q(0.999).Round(time.Microsecond),
		l.d[len(l.d)-1].Round(time.Microsecond), l.errors)
}

// drive calls GET /v1/authorize with the hot keys at rate a second, from
// when each call was due (open loop), while during runs.
func drive(client *http.Client, addr string, secrets []string, rate int, during func(stop <-chan struct{})) latencies {
	stop := make(chan struct{})
	var mu sync.Mutex
	var out latencies
	var errs atomic.Int64
	var wg sync.WaitGroup
	const workers = 32
	due := make(chan time.Time, 4096)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			i := w
			for t := range due {
				req, _ := http.NewRequest("GET", "http://"+addr+"/v1/authorize", nil)
				req.Header.Set("Authorization", "Bearer "+secrets[i%len(secrets)])
				i += workers
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
				}
				local = append(local, time.Since(t))
			}
			mu.Lock()
			out.d = append(out.d, local...)
			mu.Unlock()
		}()
	}
	go func() {
		interval := time.Second / time.Duration(rate)
		next := time.Now()
		for {
			select {
			case <-stop:
				close(due)
				return
			default:
			}
			now := time.Now()
			for !next.After(now) {
				due <- next
				next = next.Add(interval)
			}
			time.Sleep(next.Sub(now))
		}
	}()
	during(stop)
	close(stop)
	wg.Wait()
	out.errors = errs.Load()
	return out
}

// sampler reads a process's RSS every 50 ms.
type sampler struct {
	pid    int
	mu     sync.Mutex
	lo, hi int64
}

func (s *sampler) start() (stop func()) {
	done := make(chan struct{})
	s.reset()
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			v := procStatus(s.pid, "VmRSS:")
			if v == 0 {
				continue
			}
			s.mu.Lock()
			if s.lo == 0 || v < s.lo {
				s.lo = v
			}
			s.hi = max(s.hi, v)
			s.mu.Unlock()
		}
	}()
	return func() { close(done) }
}

func (s *sampler) reset() {
	s.mu.Lock()
	s.lo, s.hi = 0, 0
	s.mu.Unlock()
}

func (s *sampler) window() (lo, hi int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lo, s.hi
}

func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procCPU is the CPU time (user and system) the process has used.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}
