package main

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/postgres"
)

// mountPprof serves Go's profiler (net/http/pprof) at /debug/pprof/ on the
// API's listener, to operators only: a profile shows the program's code
// and timings, never a key, but it costs CPU while it runs, and operators
// are the ones who may take that from everyone's verifications.
//
//	curl -H "Authorization: Bearer $OPERATOR" -o cpu.prof \
//	  'http://127.0.0.1:8080/debug/pprof/profile?seconds=20'
//	go tool pprof -top latchkey cpu.prof
//
// On PostgreSQL, changes (the change feed's Timings) is served beside it at
// /debug/changefeed: when this replica took, re-read and applied each of
// the last keys it was notified of, as JSON. bench/load's revocation mode
// reads it to split a deactivation's delay into stages. It names key IDs,
// which are not secrets, and nothing else.
func mountPprof(api *httpapi.Server, changes func() []postgres.ChangeTiming) {
	profiles := http.NewServeMux()
	profiles.HandleFunc("/debug/pprof/", pprof.Index) // the index and named profiles (heap, goroutine, ...)
	profiles.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	profiles.HandleFunc("/debug/pprof/profile", pprof.Profile)
	profiles.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	profiles.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if changes != nil {
		profiles.HandleFunc("/debug/changefeed", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(changes())
		})
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := api.Authenticate(r)
		if err == nil && a.Role != latchkey.RoleOperator {
			err = latchkey.Errorf(latchkey.EFORBIDDEN, "only operators may profile the server")
		}
		if err != nil {
			api.Error(w, r, err)
			return
		}
		profiles.ServeHTTP(w, r)
	})
	prev := api.Mount
	api.Mount = func(mux *http.ServeMux) {
		if prev != nil {
			prev(mux)
		}
		mux.Handle("/debug/pprof/", h)
		if changes != nil {
			mux.Handle("/debug/changefeed", h)
		}
	}
}
