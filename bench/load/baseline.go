package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/httpapi"
)

// The baselines are what latchkey is measured against: bare net/http
// servers run as processes of their own, like latchkey, by this same
// program (`load -baseline MODE`).
//
//	200       answers 200 OK with no body to anything: a bare handler
//	          answering the status forward auth answers an allowed call
//	          with, the baseline of its target
//	204       answers 204 No Content to anything: a lower floor (net/http
//	          sends no Content-Length with a 204)
//	decision  answers 200 with the eight X-Latchkey-* headers of forward
//	          auth's answer to an allowed call (decisionHeaders), set as
//	          latchkey sets them and nothing else: what net/http costs to
//	          write that answer, without any of latchkey's own work
//	json      decodes a /v1/verify body and encodes an answer of the same
//	          size, as /v1/verify does, with encoding/json: the floor for
//	          /v1/verify
//	upstream  the API behind both proxies: a fixed 256-byte answer
//	proxy     a well-configured httputil.ReverseProxy to -upstream: a
//	          transport of its own (not latchkey's) that keeps -idle
//	          connections to the upstream (Go's default keeps 2, which
//	          under concurrent load opens and closes a connection per
//	          call and cripples the baseline), and a pool of copy
//	          buffers (without one it allocates 32 KiB per call)
const baselineModes = "200, 204, decision, json, upstream or proxy"

// baselineArgs finds "-baseline MODE" (and "-upstream URL", "-idle N") in
// args, so that the test binary can act as a baseline too.
func baselineArgs(args []string) (mode, upstream string, idle int) {
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-baseline", "--baseline":
			mode = args[i+1]
		case "-upstream", "--upstream":
			upstream = args[i+1]
		case "-idle", "--idle":
			idle, _ = strconv.Atoi(args[i+1])
		}
	}
	return mode, upstream, idle
}

// tunedTransport is the baseline proxy's transport: net/http's defaults
// (timeouts, HTTP/2 attempt, no proxy from the environment) with idle
// idle connections kept per host, so that a load of idle concurrent
// calls reuses its connections.
func tunedTransport(idle int) *http.Transport {
	idle = max(idle, 2)
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2 * idle,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// copyBuffers is the baseline proxy's httputil.BufferPool.
type copyBuffers struct{ p sync.Pool }

func (b *copyBuffers) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *copyBuffers) Put(buf []byte) { b.p.Put(&buf) }

// runBaseline serves mode on a loopback port, prints "listening on URL"
// and serves until killed.
func runBaseline(mode, upstream string, idle int) error {
	h, err := baselineHandler(mode, upstream, idle)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("baseline %s listening on http://%s\n", mode, ln.Addr())
	// The same server settings as latchkey serve's API listener.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	return srv.Serve(ln)
}

// upstreamAnswer is what the upstream API answers.
var upstreamAnswer = func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

func baselineHandler(mode, upstream string, idle int) (http.Handler, error) {
	switch mode {
	case "200":
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
		}), nil
	case "204":
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}), nil
	case "decision":
		return http.HandlerFunc(bareDecision), nil
	case "json":
		return http.HandlerFunc(bareJSON), nil
	case "upstream":
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(upstreamAnswer)
		}), nil
	case "proxy":
		u, err := url.Parse(upstream)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("-baseline proxy needs -upstream http://HOST:PORT, not %q", upstream)
		}
		return &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.SetXForwarded()
			},
			Transport:  tunedTransport(idle),
			BufferPool: &copyBuffers{},
			ErrorLog:   slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
		}, nil
	}
	return nil, fmt.Errorf("-baseline %q: expected %s", mode, baselineModes)
}

// decisionHeaders are the headers of forward auth's answer to an allowed
// call with a key the load uses (an application app-NNNNNNN of the default
// account, no scopes, external ID, metadata or identity), in canonical
// form, with values of the same lengths: the four empty ones are sent
// empty, as latchkey sends them (httpapi.WriteDecisionHeaders).
var decisionHeaders = [...][2]string{
	{httpapi.HeaderCode, "VALID"},
	{httpapi.HeaderKeyID, "LKIAEXAMPLEEXAMPLE23"},
	{httpapi.HeaderApplication, "app-0000042"},
	{httpapi.HeaderAccount, "default"},
	{httpapi.HeaderScopes, ""},
	{httpapi.HeaderExternalID, ""},
	{httpapi.HeaderMetadata, ""},
	{httpapi.HeaderIdentityID, ""},
}

// bareDecision answers 200 with decisionHeaders, their values in one
// allocation as latchkey's are, and reads nothing of the request.
func bareDecision(w http.ResponseWriter, _ *http.Request) {
	v := make([]string, len(decisionHeaders))
	h := w.Header()
	for i, kv := range decisionHeaders {
		v[i] = kv[1]
		h[kv[0]] = v[i : i+1 : i+1]
	}
	w.WriteHeader(http.StatusOK)
}

// bareJSON does the JSON work of POST /v1/verify and nothing else: read
// the body with the same limit, decode it strictly into the same type,
// encode an answer of the same type and size.
func bareJSON(w http.ResponseWriter, r *http.Request) {
	var in httpapi.VerifyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, httpapi.MaxVerifyBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		http.Error(w, "trailing data", http.StatusBadRequest)
		return
	}
	out := httpapi.VerifyResponse{Valid: true, Code: "VALID", Message: httpapi.Message("VALID"),
		AccessKeyID: "LKIAAAAAAAAAAAAAAAAA", Application: "app-0000000", Account: "default"}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(out)
}

func baselineMain(mode, upstream string, idle int) {
	if err := runBaseline(mode, upstream, idle); err != nil {
		fmt.Fprintln(os.Stderr, "bench/load:", err)
		os.Exit(1)
	}
}
