// Package httpapi serves latchkey over HTTP: the management API (/v1, JSON),
// the verification endpoint, health checks and the OpenAPI document.
//
// Handlers return errors; one function (Server.Error) maps each error code to
// its status from one table and writes {"error":{"code","message"}}. A 5xx
// says "internal error" and nothing more; the cause goes to the log.
package httpapi

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/verify"
)

// MaxBodyBytes bounds a management request body.
const MaxBodyBytes = 1 << 20

// Server holds what the handlers need.
type Server struct {
	Service  *manage.Service
	Verifier *verify.Verifier
	Log      *slog.Logger

	// TrustedProxies are the peers whose X-Forwarded-For is believed,
	// and the only peers whose word on the original request (forward
	// auth's X-Original-* and X-Forwarded-Method/-Uri) is taken.
	TrustedProxies []netip.Prefix

	// ScopeRules map method and path to the scope a call needs, on every
	// gateway surface and on /v1/verify asked with a method and path.
	ScopeRules []ScopeRule

	// PathRelax accepts path forms that are refused by default as having
	// more than one meaning (serve --path-relax).
	PathRelax latchkey.PathRelax

	// Leaks configures leak reports; nil means the defaults.
	Leaks *LeakConfig

	// Ready reports whether the server should take traffic (store
	// reachable, index loaded). nil means always ready.
	Ready func(ctx context.Context) error

	// Extra routes registered by other adapters (console, metrics).
	Mount func(mux *http.ServeMux)

	// AuditPublicKey is the public half of the key that signs audit
	// checkpoints (serve --audit-signing-key), served beside them; nil
	// when the server signs none.
	AuditPublicKey ed25519.PublicKey

	// Webhooks, when set, sends webhook pings at once (webhook.go).
	Webhooks *manage.Dispatcher

	mux   *http.ServeMux
	authz http.Handler // /v1/authorize, served before routing

	untrustedLogged atomic.Int64 // when UNTRUSTED_GATEWAY was last logged (unix ns)
}

// route is one registered endpoint: the OpenAPI test checks the document
// against this list.
type route struct {
	method, pattern string
}

// Routes lists every method and path the API serves, for the OpenAPI test.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.routes() {
		if r.method == "" { // any method
			for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
				out = append(out, m+" "+r.pattern)
			}
			continue
		}
		out = append(out, r.method+" "+r.pattern)
	}
	return out
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type endpoint struct {
	route
	h handlerFunc
}

func (s *Server) routes() []endpoint {
	e := func(m, p string, h handlerFunc) endpoint { return endpoint{route{m, p}, h} }
	return append([]endpoint{
		e("GET", "/healthz", s.healthz),
		e("GET", "/readyz", s.readyz),
		e("GET", "/v1/openapi.json", s.openapi),
		e("POST", "/v1/verify", s.verify),
		e("", authorizePath, s.authorize),

		e("GET", "/v1/accounts", s.admin(s.listAccounts)),
		e("POST", "/v1/accounts", s.admin(s.createAccount)),
		e("PATCH", "/v1/accounts/{name}", s.admin(s.updateAccount)),
		e("GET", "/v1/key-prefixes", s.admin(s.listKeyPrefixes)),

		e("GET", "/v1/applications", s.admin(s.listApplications)),
		e("POST", "/v1/applications", s.admin(s.createApplication)),
		e("GET", "/v1/applications/{name}", s.admin(s.getApplication)),
		e("PATCH", "/v1/applications/{name}", s.admin(s.updateApplication)),
		e("DELETE", "/v1/applications/{name}", s.admin(s.deleteApplication)),
		e("GET", "/v1/applications/{name}/access-keys", s.admin(s.listApplicationKeys)),
		e("POST", "/v1/applications/{name}/access-keys", s.admin(s.createAccessKey)),

		e("GET", "/v1/identities", s.admin(s.listIdentities)),
		e("POST", "/v1/identities", s.admin(s.createIdentity)),
		e("GET", "/v1/identities/{id}", s.admin(s.getIdentity)),
		e("PATCH", "/v1/identities/{id}", s.admin(s.updateIdentity)),
		e("DELETE", "/v1/identities/{id}", s.admin(s.deleteIdentity)),
		e("GET", "/v1/identities/{id}/quota", s.admin(s.getIdentityQuota)),
		e("POST", "/v1/identities/{id}/quota/top-up", s.admin(s.topUpIdentityQuota)),
		e("GET", "/v1/identities/{id}/usage", s.admin(s.getIdentityUsage)),

		e("GET", "/v1/access-keys", s.admin(s.listAccessKeys)),
		e("GET", "/v1/access-keys/{id}", s.admin(s.getAccessKey)),
		e("PATCH", "/v1/access-keys/{id}", s.admin(s.updateAccessKey)),
		e("DELETE", "/v1/access-keys/{id}", s.admin(s.deleteAccessKey)),
		e("GET", "/v1/access-keys/{id}/last-used", s.admin(s.getLastUsed)),
		e("GET", "/v1/access-keys/{id}/usage", s.admin(s.getUsage)),
		e("POST", "/v1/access-keys/{id}/roll", s.admin(s.rollAccessKey)),
		e("GET", "/v1/access-keys/{id}/quota", s.admin(s.getQuota)),
		e("POST", "/v1/access-keys/{id}/quota/top-up", s.admin(s.topUpQuota)),
		e("GET", "/v1/rotations", s.admin(s.listRotations)),
		e("POST", "/v1/import", s.admin(s.importKeys)),

		e("GET", "/v1/principals", s.admin(s.listPrincipals)),
		e("POST", "/v1/principals", s.admin(s.createPrincipal)),
		e("GET", "/v1/principals/{name}", s.admin(s.getPrincipal)),
		e("DELETE", "/v1/principals/{name}", s.admin(s.deletePrincipal)),
		e("GET", "/v1/principals/{name}/access-keys", s.admin(s.listPrincipalKeys)),
		e("POST", "/v1/principals/{name}/access-keys", s.admin(s.createPrincipalKey)),

		e("GET", "/v1/audit-events", s.admin(s.listAuditEvents)),
		e("GET", "/v1/audit-chain", s.admin(s.getAuditChain)),
		e("GET", "/v1/audit-checkpoints", s.admin(s.getAuditCheckpoints)),

		e("POST", "/v1/leaks", s.reportLeaks),
		e("POST", "/v1/leaks/check", s.admin(s.checkLeaks)),
		e("POST", "/v1/leaks/github", s.githubLeaks),
	}, s.hygieneRoutes(e)...)
}

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Leaks == nil {
		s.Leaks = &LeakConfig{}
	}
	mux := http.NewServeMux()
	for _, ep := range s.routes() {
		mux.Handle(strings.TrimSpace(ep.method+" "+ep.pattern), s.wrap(ep.h))
	}
	s.authz = s.wrap(s.authorize)
	if s.Mount != nil {
		s.Mount(mux)
	}
	s.mux = mux
	return s.guard(mux)
}

// wrap turns a handler that returns an error into an http.Handler.
func (s *Server) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.Error(w, r, err)
		}
	})
}

// guard runs before routing: it refuses credentials in URLs (flagging real
// keys exposed), answers unknown paths and methods in JSON, recovers from
// panics, and logs each request without its query string or headers.
func (s *Server) guard(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The clock is read only for the debug line that uses it.
		debug := s.Log.Enabled(r.Context(), slog.LevelDebug)
		var start time.Time
		if debug {
			start = time.Now()
		}
		// /v1/authorize checks the URL of the call it is asked about
		// itself, and answers in decision codes (403 CREDENTIALS_IN_URL)
		// as gateways expect. Caddy's forward_auth keeps the call's query
		// string on its request to /v1/authorize. It is the hot path of
		// every gateway and takes any method: it skips the mux, and its
		// status writer comes from a pool (the handler is synchronous and
		// keeps no reference to the writer once it returns).
		if r.URL.Path == authorizePath {
			sw := statusWriters.Get().(*statusWriter)
			*sw = statusWriter{ResponseWriter: w, status: http.StatusOK}
			defer putStatusWriter(sw) // after finish: deferred calls run last first
			defer s.finish(sw, r, start, debug)
			s.authz.ServeHTTP(sw, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer s.finish(sw, r, start, debug)
		if found, secrets := SecretInURL(r); found {
			// A decision on the credential, as the caller's
			// authentication would have been: counted as
			// CREDENTIALS_IN_URL, like the gateways' refusals.
			s.refused(latchkey.CodeCredentialsInURL)
			s.tripwire(r, secrets)
			s.headerCanaries(r, safePath(r))
			writeError(sw, http.StatusBadRequest, latchkey.ECREDSINURL,
				"credentials must not be sent in a URL (they end up in logs and browser history); send them in the Authorization or X-Api-Key header. Any key sent this way has been flagged as exposed")
			return
		}
		h, pattern := mux.Handler(r)
		if pattern == "" {
			// The mux's own 404 and 405 answers are plain text: answer
			// in JSON with the same status (and Allow header).
			rec := &headerRecorder{h: http.Header{}}
			h.ServeHTTP(rec, r)
			if allow := rec.h.Get("Allow"); allow != "" {
				sw.Header().Set("Allow", allow)
			}
			if rec.status == http.StatusMethodNotAllowed {
				writeError(sw, rec.status, latchkey.EMETHOD, fmt.Sprintf("method %s is not allowed on this path", r.Method))
				return
			}
			if rec.status != 0 && rec.status != http.StatusNotFound {
				// a redirect (e.g. path cleaning): pass it on
				for k, v := range rec.h {
					sw.Header()[k] = v
				}
				sw.WriteHeader(rec.status)
				return
			}
			writeError(sw, http.StatusNotFound, latchkey.ENOTFOUND, "no such endpoint; see /v1/openapi.json")
			return
		}
		mux.ServeHTTP(sw, r)
	})
}

// tripwire flags every real key whose secret was seen in a URL.
func (s *Server) tripwire(r *http.Request, secrets []string) {
	for _, sec := range secrets {
		e := s.Verifier.Find(sec)
		if e == nil {
			continue
		}
		if e.Canary {
			// A canary is not flagged exposed (that would change it for all
			// to see): it raises its alert, as on any other use.
			if s.Verifier.Canary != nil {
				s.Verifier.Canary.CanaryUsed(e, &verify.Request{IP: ClientIP(r, s.TrustedProxies), UserAgent: r.UserAgent(),
					Surface: SurfaceOf(r.Context()), Path: safePath(r)}, time.Now())
			}
			continue
		}
		actor := latchkey.Actor{Principal: "tripwire", Account: e.Account, Role: latchkey.RoleOperator,
			SourceIP: addrString(ClientIP(r, s.TrustedProxies)), UserAgent: r.UserAgent()}
		where := fmt.Sprintf("URL of a %s request to %s", r.Method, safePath(r))
		// Not r.Context(): a client that hangs up must not stop the flag.
		if _, err := s.Service.MarkExposed(context.WithoutCancel(r.Context()), actor, e.ID, where, false); err != nil {
			s.logger().Error("flagging key exposed", "access_key_id", e.ID, "err", err)
			continue
		}
		s.logger().Warn("credential sent in URL; key flagged exposed", "access_key_id", e.ID, "client_ip", actor.SourceIP)
	}
}

// finish ends every request guard serves: it recovers from a panic
// (answering 500 in JSON when nothing was written yet) and writes the
// debug log line when debug (the logger was enabled at debug level when
// the request came in, and start is when). It must be deferred directly,
// for recover to work.
func (s *Server) finish(sw *statusWriter, r *http.Request, start time.Time, debug bool) {
	if p := recover(); p != nil {
		if p == http.ErrAbortHandler {
			panic(p)
		}
		s.Log.Error("panic serving request", "method", r.Method, "path", safePath(r), "panic", fmt.Sprint(p))
		if !sw.wrote {
			writeError(sw, http.StatusInternalServerError, latchkey.EINTERNAL, "internal error")
		}
	}
	// Checked first: the arguments cost allocations on every request
	// even when the line is not written.
	if debug {
		s.Log.Debug("request", append(logAttrs(r, sw.status), "duration", time.Since(start), "client_ip", ClientIP(r, s.TrustedProxies))...)
	}
}

// statusWriters pools the status writers of /v1/authorize calls.
var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

func putStatusWriter(sw *statusWriter) {
	*sw = statusWriter{} // keep no reference to the finished response
	statusWriters.Put(sw)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type headerRecorder struct {
	h      http.Header
	status int
}

func (r *headerRecorder) Header() http.Header { return r.h }
func (r *headerRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *headerRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}

// pageParams reads ?limit= and ?page_token=.
func pageParams(r *http.Request) (limit int, token string, err error) {
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > 1000 {
			return 0, "", latchkey.Errorf(latchkey.EINVALID, "limit must be a whole number from 1 to 1000")
		}
		limit = n
	}
	return limit, q.Get("page_token"), nil
}
