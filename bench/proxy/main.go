// Command proxy measures the throughput of latchkey's reverse-proxy mode
// against Go's plain httputil.ReverseProxy, on the same machine in the same
// run: both forward to the same upstream with the same transport settings,
// and rounds alternate A B A B so that drift in the machine's speed hits
// both alike. It prints each round and the medians as Markdown, the form
// docs/benchmarks.md records.
//
//	go run ./bench/proxy                       # 3 rounds each of 5s, 32 clients
//	go run ./bench/proxy -rounds 5 -duration 10s -concurrency 64
//
// The latchkey side is what `latchkey serve --proxy-upstream` runs: a
// SQLite store in a temporary directory, the key index, the verifier with
// its usage recorder, and internal/proxy. Every call carries a valid key,
// so every call is verified and its usage recorded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/proxy"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
)

type config struct {
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	bodyBytes   int
}

func main() {
	var c config
	flag.IntVar(&c.rounds, "rounds", 3, "rounds per proxy (they alternate: latchkey, plain, latchkey, plain, ...)")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "length of one round")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "untimed load on each proxy before the first round")
	flag.IntVar(&c.concurrency, "concurrency", 32, "clients sending calls at once")
	flag.IntVar(&c.bodyBytes, "body", 256, "bytes in each upstream answer")
	flag.Parse()
	before := loadavg()
	res, err := run(context.Background(), c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		os.Exit(1)
	}
	res.print(os.Stdout, c)
	fmt.Printf("load average (1, 5, 15 min) before: %s; after: %s\n", before, loadavg())
}

// loadavg returns the machine's load averages, which say how much the
// figures may be disturbed by other work ("?" where unknown).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// result holds req/s per round for each proxy.
type result struct {
	latchkey, plain []float64
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (r *result) print(w io.Writer, c config) {
	fmt.Fprintf(w, "%s/%s, %d CPUs, %s; %d clients, %d-byte answers, %d rounds of %s each, alternating\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), c.concurrency, c.bodyBytes, c.rounds, c.duration)
	fmt.Fprintln(w, "| round | latchkey proxy (req/s) | httputil.ReverseProxy (req/s) |")
	fmt.Fprintln(w, "| --- | ---: | ---: |")
	for i := range r.latchkey {
		fmt.Fprintf(w, "| %d | %.0f | %.0f |\n", i+1, r.latchkey[i], r.plain[i])
	}
	ml, mp := median(r.latchkey), median(r.plain)
	fmt.Fprintf(w, "| **median** | **%.0f** | **%.0f** |\n\n", ml, mp)
	fmt.Fprintf(w, "latchkey / plain = %.2f\n", ml/mp)
}

func run(ctx context.Context, c config) (*result, error) {
	dir, err := os.MkdirTemp("", "latchkey-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// the upstream: a small fixed answer
	answer := make([]byte, c.bodyBytes)
	for i := range answer {
		answer[i] = 'a' + byte(i%26)
	}
	upstream, stopUp, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(answer)
	}))
	if err != nil {
		return nil, err
	}
	defer stopUp()
	upURL, _ := url.Parse(upstream)

	// latchkey's decision side, wired as serve wires it
	log := slog.New(slog.DiscardHandler)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "latchkey.db"))
	if err != nil {
		return nil, err
	}
	defer store.Close()
	ix := verify.NewIndex()
	rec := verify.NewRecorder(store, time.Second, log)
	rec.Index = ix
	recCtx, stopRec := context.WithCancel(ctx)
	defer stopRec()
	rec.Start(recCtx)
	svc := manage.New(store, ix, log)
	if _, err := svc.Bootstrap(ctx); err != nil {
		return nil, err
	}
	op := latchkey.Actor{Principal: manage.BootstrapPrincipal, Account: latchkey.DefaultAccount, Role: latchkey.RoleOperator}
	if _, err := svc.CreateApplication(ctx, op, latchkey.DefaultAccount, "bench", "", nil); err != nil {
		return nil, err
	}
	key, err := svc.CreateAccessKey(ctx, op, latchkey.DefaultAccount, "bench", latchkey.NewAccessKey{})
	if err != nil {
		return nil, err
	}
	api := &httpapi.Server{Service: svc, Verifier: verify.New(ix, rec), Log: log}
	lp, err := proxy.New(proxy.Config{Upstream: upURL, API: api, Log: log}) // the same transport: proxy.NewTransport
	if err != nil {
		return nil, err
	}
	lkURL, stopLK, err := serve(lp)
	if err != nil {
		return nil, err
	}
	defer stopLK()

	// the baseline: httputil.ReverseProxy, same upstream, same transport
	plain := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upURL)
			pr.SetXForwarded()
		},
		Transport: proxy.NewTransport(proxy.Timeouts{}),
		// calls cut off at the end of a round are no news
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	plainURL, stopPlain, err := serve(plain)
	if err != nil {
		return nil, err
	}
	defer stopPlain()

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * c.concurrency, MaxIdleConnsPerHost: c.concurrency}}
	defer client.CloseIdleConnections()
	load := func(target string, d time.Duration) (float64, error) {
		return measure(ctx, client, target, key.Secret, c.concurrency, d)
	}
	for _, u := range []string{lkURL, plainURL} {
		if _, err := load(u, c.warmup); err != nil {
			return nil, err
		}
	}
	res := &result{}
	for range c.rounds {
		a, err := load(lkURL, c.duration)
		if err != nil {
			return nil, err
		}
		b, err := load(plainURL, c.duration)
		if err != nil {
			return nil, err
		}
		res.latchkey, res.plain = append(res.latchkey, a), append(res.plain, b)
	}
	return res, nil
}

// serve runs h on a 127.0.0.1 port and returns its URL.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// measure sends calls from n clients for d and returns the rate of 200
// answers. Any other answer is an error: the comparison means nothing if
// one side is refusing calls.
func measure(ctx context.Context, c *http.Client, base, secret string, n int, d time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ok atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			target := fmt.Sprintf("%s/items/%d", base, i)
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", target, nil)
				req.Header.Set("X-Api-Key", secret)
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						once.Do(func() { firstErr = err })
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					once.Do(func() { firstErr = fmt.Errorf("%s answered %d", base, resp.StatusCode) })
					return
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil && !errors.Is(firstErr, context.DeadlineExceeded) {
		return 0, firstErr
	}
	return float64(ok.Load()) / elapsed.Seconds(), nil
}
