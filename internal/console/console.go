// Package console serves latchkey's web console at /console: sign-in with an
// admin access key, the applications and their keys with each key's status
// beside it, key creation that shows the secret exactly once, deactivation,
// reactivation and deletion, a rotation wizard whose chart shows the traffic
// moving from the old key to the new one, the restrictions editor and the
// audit log.
//
// Pages are rendered on the server with html/template from embedded files;
// a small embedded script only adds live chart updates, copy and download
// buttons, and every page works without it. Every change goes through
// manage.Service, so it obeys the same rules and is audited with the
// signed-in principal, exactly as an API call would be.
//
// Security: sessions live in server memory (the browser holds only a random
// ID in an HttpOnly, SameSite=Strict cookie, Secure over TLS); every form
// carries a per-session CSRF token and cross-origin POSTs are refused; every
// response has a strict Content-Security-Policy (no inline script or style);
// the secret of a new key appears in that one response, sent with
// Cache-Control: no-store, and nowhere else.
package console

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/verify"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served.
const Prefix = "/console"

// ContentSecurityPolicy is sent with every console response: scripts,
// styles and connections from the console's own origin only, nothing inline,
// no framing, forms that post only to the console.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// MaxFormBytes bounds a form body.
const MaxFormBytes = 256 << 10

// Console is the web console. Set the exported fields, then call Mount (or
// Handler) once.
type Console struct {
	Service  *manage.Service
	Verifier *verify.Verifier
	Log      *slog.Logger

	// ClientIP returns the address of the browser, for the audit log and
	// the brute-force guard. nil means the connection's peer.
	ClientIP func(r *http.Request) netip.Addr
	// TrustedProxies are the peers whose X-Forwarded-Proto is believed
	// when deciding whether the browser used TLS (for Secure cookies).
	TrustedProxies []netip.Prefix

	// Now returns the current time; tests inject a clock.
	Now func() time.Time
	// IdleTimeout ends a session not used for this long (default 30m);
	// MaxSessionAge ends any session this long after sign-in (default 12h).
	IdleTimeout   time.Duration
	MaxSessionAge time.Duration
	// TrafficWindow is how recent a valid call with the old key must be
	// for the rotation wizard to warn before deactivating it (default 10m).
	TrafficWindow time.Duration
	// RefreshSeconds is how often the chart script asks for a fresh chart
	// (default 10).
	RefreshSeconds int
	// OIDC, when set, offers single sign-on with an OpenID Provider on the
	// sign-in page (see oidc.go).
	OIDC *OIDC
	// DisableKeySignin turns the access-key sign-in form off (with OIDC
	// set, people then sign in only through their IdP).
	DisableKeySignin bool

	once     sync.Once
	sessions *sessionStore
	mux      *http.ServeMux
	pages    map[string]*template.Template
	static   map[string]staticFile
	version  string // hash of the static files, for cache busting
	cop      *http.CrossOriginProtection
}

type staticFile struct {
	body  []byte
	ctype string
}

func (c *Console) init() {
	c.once.Do(func() {
		if c.Log == nil {
			c.Log = slog.New(slog.DiscardHandler)
		}
		if c.Now == nil {
			c.Now = time.Now
		}
		if c.IdleTimeout <= 0 {
			c.IdleTimeout = DefaultIdleTimeout
		}
		if c.MaxSessionAge <= 0 {
			c.MaxSessionAge = DefaultMaxSessionAge
		}
		if c.TrafficWindow <= 0 {
			c.TrafficWindow = 10 * time.Minute
		}
		if c.RefreshSeconds <= 0 {
			c.RefreshSeconds = 10
		}
		c.sessions = newSessionStore()
		c.cop = http.NewCrossOriginProtection()
		c.loadStatic()
		c.pages = parsePages()
		c.mux = c.routes()
	})
}

func (c *Console) now() time.Time { return c.Now().UTC() }

// Mount registers the console on mux at /console. It is the
// httpapi.Server.Mount hook.
func (c *Console) Mount(mux *http.ServeMux) {
	h := c.Handler()
	mux.Handle(Prefix+"/", h)
	mux.Handle(Prefix, h)
}

// Handler returns the console's handler for every path under /console.
func (c *Console) Handler() http.Handler {
	c.init()
	return http.HandlerFunc(c.serve)
}

func (c *Console) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	m.HandleFunc("GET /console/{$}", c.index)
	m.HandleFunc("GET /console/static/{file}", c.serveStatic)
	m.HandleFunc("GET /console/signin", c.signinPage)
	m.HandleFunc("POST /console/signin", c.signin)
	m.Handle("POST /console/signout", c.form(c.signout))
	if c.OIDC != nil {
		m.HandleFunc("GET /console/oidc/login", c.oidcLogin)
		m.HandleFunc("GET /console/oidc/callback", c.oidcCallback)
		m.HandleFunc("POST /console/oidc/backchannel-logout", c.oidcBackchannelLogout)
	}
	m.Handle("POST /console/account", c.form(c.switchAccount))

	m.Handle("GET /console/applications", c.page(c.applications))
	m.Handle("POST /console/applications", c.form(c.createApplication))
	m.Handle("GET /console/applications/{name}", c.page(c.application))
	m.Handle("POST /console/applications/{name}/keys", c.form(c.createKey))
	m.Handle("POST /console/applications/{name}/restrictions", c.form(c.updateApplicationRestrictions))
	m.Handle("POST /console/applications/{name}/delete", c.form(c.deleteApplication))

	m.Handle("GET /console/keys", c.page(c.keys))
	m.Handle("GET /console/keys/{id}", c.page(c.key))
	m.Handle("GET /console/keys/{id}/chart", c.fragment(c.chartFragment))
	m.Handle("GET /console/keys/{id}/rotate", c.page(c.rotate))
	m.Handle("POST /console/keys/{id}/status", c.form(c.setStatus))
	m.Handle("POST /console/keys/{id}/delete", c.form(c.deleteKey))
	m.Handle("POST /console/keys/{id}/restrictions", c.form(c.updateKeyRestrictions))
	m.Handle("POST /console/keys/{id}/quota", c.form(c.setQuota))
	m.Handle("POST /console/keys/{id}/quota/top-up", c.form(c.topUpQuota))

	m.Handle("GET /console/audit", c.page(c.audit))
	return m
}

// serve sets the headers every console response carries and routes the
// request, answering unknown paths and methods with console pages.
func (c *Console) serve(w http.ResponseWriter, r *http.Request) {
	c.serveSurface(w, r, c.mux, c.renderError, "There is no such page in the console.")
}

// serveSurface is serve for the console and the portal: it sets the
// security headers both surfaces' responses carry, routes the request with
// mux, and answers an unknown path or method with the surface's own error
// page (renderError; notFound is its text for an unknown path) instead of
// the mux's plain text.
func (c *Console) serveSurface(w http.ResponseWriter, r *http.Request, mux *http.ServeMux,
	renderError func(http.ResponseWriter, *http.Request, *user, int, string), notFound string) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	h.Set("Cache-Control", "no-store")
	if c.secure(r) {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	handler, pattern := mux.Handler(r)
	if pattern != "" {
		mux.ServeHTTP(w, r)
		return
	}
	rec := &probe{h: http.Header{}}
	handler.ServeHTTP(rec, r)
	switch {
	case rec.status == http.StatusMethodNotAllowed:
		if allow := rec.h.Get("Allow"); allow != "" {
			h.Set("Allow", allow)
		}
		renderError(w, r, nil, http.StatusMethodNotAllowed, fmt.Sprintf("Method %s is not allowed here.", r.Method))
	case rec.status >= 300 && rec.status < 400:
		if loc := rec.h.Get("Location"); loc != "" {
			h.Set("Location", loc)
		}
		w.WriteHeader(rec.status)
	default:
		renderError(w, r, nil, http.StatusNotFound, notFound)
	}
}

// probe records what the mux's own 404, 405 or redirect handler would say.
type probe struct {
	h      http.Header
	status int
}

func (p *probe) Header() http.Header { return p.h }
func (p *probe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
func (p *probe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}

// user is the signed-in caller of one request.
type user struct {
	sessionView
	// actor is who the change is audited as: the session's principal,
	// with this request's address and user agent.
	actor latchkey.Actor
	// base is where the user's pages are: "" (the console) or
	// PortalPrefix; owner is a portal consumer's organisation.
	base  string
	owner string
}

func (u *user) canWrite() bool { return u.actor.CanWrite(u.account) }

// prefix is where the user's pages are.
func (u *user) prefix() string {
	if u.base == "" {
		return Prefix
	}
	return u.base
}

type handler func(w http.ResponseWriter, r *http.Request, u *user) error

// authenticate returns the request's live session. A session ends when it
// idles out or ages out, and as soon as the admin key it signed in with is
// deactivated, expires or is deleted. Requests the page makes by itself
// (chart updates, and the reloads of a page without scripts, marked
// auto=1) do not count as activity.
func (c *Console) authenticate(r *http.Request, automatic bool) (*user, string) {
	now := c.now()
	sv, ok, expired := c.sessions.get(c.sessionID(r), now, c.IdleTimeout, c.MaxSessionAge, !automatic)
	if !ok {
		if expired {
			return nil, "expired"
		}
		return nil, ""
	}
	a := sv.actor
	if p := sv.person; p != nil {
		// A person signed in with OIDC: the IdP is asked again at most
		// every c.OIDC.Revalidate(); the role is what the role map gives now.
		if c.OIDC == nil {
			c.sessions.delete(sv.id)
			return nil, "revoked"
		}
		// A browser that goes away mid-check must not end its own session:
		// the check has its own timeout.
		g, err := c.OIDC.current(context.WithoutCancel(r.Context()), p, now)
		if err != nil {
			c.sessions.delete(sv.id)
			c.Log.Info("console session ended by the IdP", "oidc_subject", p.Subject, "email", p.Email, "reason", err.Error())
			return nil, "idp"
		}
		a.Role, a.Account = g.Role, g.Account
	} else {
		e := c.Verifier.Index.Get(sv.actor.AccessKeyID)
		if e == nil || !e.Active || (e.ExpiresAt != 0 && now.UnixNano() >= e.ExpiresAt) ||
			e.Principal() != sv.actor.Principal || e.Account != sv.actor.Account ||
			e.Role() == "" || e.Role() == latchkey.RoleVerifier {
			c.sessions.delete(sv.id)
			return nil, "revoked"
		}
		a.Role = e.Role() // a role change applies at once
	}
	a.SourceIP, a.UserAgent = c.clientIP(r).String(), r.UserAgent()
	if a.Role != latchkey.RoleOperator {
		sv.account = a.Account
	}
	return &user{sessionView: sv, actor: a}, ""
}

func (c *Console) clientIP(r *http.Request) netip.Addr {
	if c.ClientIP != nil {
		return c.ClientIP(r)
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// page wraps a GET handler: without a session it redirects to sign-in and
// comes back afterwards.
func (c *Console) page(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, why := c.authenticate(r, r.URL.Query().Get("auto") == "1")
		if u == nil {
			q := url.Values{"next": {r.URL.RequestURI()}}
			if why != "" {
				q.Set("m", why)
			}
			http.Redirect(w, r, Prefix+"/signin?"+q.Encode(), http.StatusSeeOther)
			return
		}
		if err := h(w, r, u); err != nil {
			c.fail(w, r, u, err)
		}
	})
}

// fragment wraps a GET handler whose answer is a piece of a page fetched by
// the script: without a session it answers 401 and the script stops.
func (c *Console) fragment(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := c.authenticate(r, true)
		if u == nil {
			http.Error(w, "session ended; reload the page to sign in again", http.StatusUnauthorized)
			return
		}
		if err := h(w, r, u); err != nil {
			code := latchkey.ErrorCode(err)
			if statusFor(code) >= 500 {
				c.Log.Error("console fragment failed", "path", r.URL.Path, "err", err)
			}
			http.Error(w, latchkey.ErrorMessage(err), statusFor(code))
		}
	})
}

// form wraps a POST handler. It refuses cross-origin requests (by
// Sec-Fetch-Site or Origin), requests without a live session, and requests
// whose CSRF token is not the session's; all three are 403 and change
// nothing.
func (c *Console) form(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.cop.Check(r); err != nil {
			c.renderError(w, r, nil, http.StatusForbidden, "This request came from another site and was refused (cross-site request forgery protection).")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		if err := r.ParseForm(); err != nil {
			c.renderError(w, r, nil, http.StatusBadRequest, "The form could not be read (it may be too large).")
			return
		}
		u, _ := c.authenticate(r, false)
		if u == nil {
			c.renderError(w, r, nil, http.StatusForbidden, "Your session has ended, so nothing was changed. Sign in again and repeat the action.")
			return
		}
		if !tokensEqual(r.PostForm.Get("csrf"), u.csrf) {
			c.renderError(w, r, u, http.StatusForbidden, "This form is missing its security token or has an old one, so nothing was changed (cross-site request forgery protection). Reload the page and try again.")
			return
		}
		if err := h(w, r, u); err != nil {
			c.fail(w, r, u, err)
		}
	})
}

// statuses maps error codes to HTTP statuses (the same table as the API's).
var statuses = map[string]int{
	latchkey.EINVALID:      http.StatusBadRequest,
	latchkey.EMALFORMED:    http.StatusBadRequest,
	latchkey.EUNAUTHORIZED: http.StatusUnauthorized,
	latchkey.EFORBIDDEN:    http.StatusForbidden,
	latchkey.ENOTFOUND:     http.StatusNotFound,
	latchkey.EEXISTS:       http.StatusConflict,
	latchkey.ECONFLICT:     http.StatusConflict,
	latchkey.ELIMIT:        http.StatusConflict,
	latchkey.EKEYACTIVE:    http.StatusConflict,
	latchkey.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	latchkey.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

func statusFor(code string) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// fail renders err as an error page. Internal errors are logged with their
// cause and shown as "internal error" only.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, u *user, err error) {
	code := latchkey.ErrorCode(err)
	status := statusFor(code)
	if status >= 500 {
		c.Log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	c.renderError(w, r, u, status, latchkey.ErrorMessage(err))
}

// userError reports whether err is the user's to fix (shown on the page
// they came from) rather than a failure of the server.
func userError(err error) bool {
	return statusFor(latchkey.ErrorCode(err)) < 500
}

// back redirects to to after a form, with a message shown once there.
func (c *Console) back(w http.ResponseWriter, r *http.Request, u *user, to string, f flash) error {
	if f.Message != "" {
		c.sessions.addFlash(u.id, f)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// backOnUserError shows a user error on the page the form came from, and
// renders an error page for anything else.
func (c *Console) backOnUserError(w http.ResponseWriter, r *http.Request, u *user, to string, err error) error {
	if userError(err) {
		return c.back(w, r, u, to, flash{Error: true, Message: latchkey.ErrorMessage(err)})
	}
	return err
}

func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	if u, _ := c.authenticate(r, false); u != nil {
		http.Redirect(w, r, Prefix+"/applications", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
}

// follow makes the account an operator looks at the account of the object
// they opened (a key page reached by link or bookmark), so that the links on
// the page lead to that account's objects.
func (c *Console) follow(u *user, account string) {
	if u.account != account && u.actor.Role == latchkey.RoleOperator {
		u.account = account
		c.sessions.update(u.id, func(s *session) { s.account = account })
	}
}

func (c *Console) switchAccount(w http.ResponseWriter, r *http.Request, u *user) error {
	name := r.PostForm.Get("account")
	accounts, err := c.Service.ListAccounts(r.Context(), u.actor)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if a.Name == name {
			c.sessions.update(u.id, func(s *session) { s.account = name })
			return c.back(w, r, u, Prefix+"/applications", flash{Message: "Now showing account " + name + "."})
		}
	}
	return latchkey.Errorf(latchkey.ENOTFOUND, "account %q not found", name)
}

// view is what every page template receives.
type view struct {
	Title      string
	Section    string
	User       *userView
	CSRF       string
	Flash      []flash
	Now        time.Time
	Version    string // busts caches of static files
	Refresh    int    // seconds between reloads when scripts are off (0 = none)
	RefreshURL string // the page itself, marked as an automatic reload
	Accounts   []string
	// Continue, when set, is a same-origin page the browser goes to at
	// once (after an OIDC sign-in).
	Continue string
	Data     any
}

type userView struct {
	Principal   string
	Person      bool // signed in with OIDC
	Role        latchkey.Role
	Account     string
	AccessKeyID string
	CanWrite    bool
}

// render writes a full page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, u *user, status int, name, title, section string, data any) {
	v := c.newView(r, u, title, section, data)
	c.write(w, status, name, v)
}

func (c *Console) newView(r *http.Request, u *user, title, section string, data any) *view {
	v := &view{Title: title, Section: section, Now: c.now(), Version: c.version, Data: data}
	if u != nil {
		v.User = &userView{Principal: u.actor.Principal, Role: u.actor.Role, Account: u.account,
			AccessKeyID: u.actor.AccessKeyID, CanWrite: u.canWrite(), Person: u.person != nil}
		if u.person != nil {
			v.User.Principal = personLabel(u.person)
		}
		v.CSRF = u.csrf
		v.Flash = c.sessions.takeFlash(u.id)
		if u.actor.Role == latchkey.RoleOperator {
			if accs, err := c.Service.ListAccounts(r.Context(), u.actor); err == nil && len(accs) > 1 {
				for _, a := range accs {
					v.Accounts = append(v.Accounts, a.Name)
				}
			}
		}
	}
	return v
}

func (c *Console) write(w http.ResponseWriter, status int, name string, v any) {
	t := c.pages[name]
	if t == nil {
		panic("console: no template " + name)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "page", v); err != nil {
		c.Log.Error("console template failed", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

type errorData struct {
	Status  int
	Heading string
	Message string
}

func (c *Console) renderError(w http.ResponseWriter, r *http.Request, u *user, status int, msg string) {
	heading := http.StatusText(status)
	if status == http.StatusForbidden {
		heading = "Refused"
	}
	v := c.newView(r, u, heading, "", errorData{Status: status, Heading: heading, Message: msg})
	c.write(w, status, "error", v)
}

// loadStatic reads the embedded static files and hashes them.
func (c *Console) loadStatic() {
	c.static = map[string]staticFile{}
	h := sha256.New()
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		ctype := "application/octet-stream"
		switch path.Ext(p) {
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		}
		c.static[path.Base(p)] = staticFile{body: b, ctype: ctype}
		h.Write([]byte(p))
		h.Write(b)
		return nil
	})
	if err != nil {
		panic("console: reading embedded static files: " + err.Error())
	}
	c.version = hex.EncodeToString(h.Sum(nil))[:12]
}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := c.static[r.PathValue("file")]
	if !ok {
		c.renderError(w, r, nil, http.StatusNotFound, "There is no such file.")
		return
	}
	w.Header().Set("Content-Type", f.ctype)
	if r.URL.Query().Get("v") == c.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	_, _ = w.Write(f.body)
}

// safeNext returns next when it is a path inside the console, else the
// default page, so that the sign-in redirect cannot lead to another site.
func safeNext(next string) string { return nextWithin(Prefix, next) }

// nextWithin returns next when it is a page under prefix (the console's or
// the portal's) that is not a sign-in page, else prefix's applications.
// Whatever a browser may read as a step out of prefix is refused: a dot
// segment, an encoded dot, slash or backslash, a backslash, a doubled
// slash, a scheme or host.
func nextWithin(prefix, next string) string {
	def := prefix + "/applications"
	if !strings.HasPrefix(next, prefix+"/") || strings.ContainsAny(next, "\\\r\n\t") ||
		strings.HasPrefix(next, prefix+"/signin") || strings.HasPrefix(next, prefix+"/oidc/") ||
		strings.Contains(next, "/..") || strings.Contains(next, "//") {
		return def
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || !strings.HasPrefix(u.Path, prefix+"/") {
		return def
	}
	// a browser treats %2e%2e as .., and %2f or %5c may become a separator
	lower := strings.ToLower(u.EscapedPath())
	if strings.Contains(u.Path, "/..") || strings.Contains(u.Path, "\\") || strings.Contains(lower, "%2e") ||
		strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return def
	}
	return next
}

// errNotApplicationKey is the answer for principal keys, which the console
// does not manage (use the CLI or API).
func errNotApplicationKey(id string) error {
	return latchkey.Errorf(latchkey.ENOTFOUND, "access key %s not found", id)
}

// appKey returns an application key the user may read, or ENOTFOUND.
func (c *Console) appKey(ctx context.Context, u *user, id string) (*latchkey.AccessKey, error) {
	k, err := c.Service.GetAccessKey(ctx, u.actor, id)
	if err != nil {
		return nil, err
	}
	if k.Application == "" {
		return nil, errNotApplicationKey(id)
	}
	return k, nil
}
