package console

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// clock is a settable clock shared by the service, the verifier and the
// console, so that tests move time without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a console over a real SQLite store, with the first operator's key.
type env struct {
	t     *testing.T
	store *sqlite.Store
	ix    *verify.Index
	svc   *manage.Service
	ver   *verify.Verifier
	con   *Console
	// portal is the consumer portal beside the console (portal.go).
	portal *Portal
	clock  *clock
	srv    *httptest.Server

	opID, opSecret string
	op             latchkey.Actor
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with a hook that sets up the console before it
// serves, knowing the URL it will serve at.
func newEnvWith(t *testing.T, setup func(c *Console, consoleURL string)) *env {
	t.Helper()
	ctx := t.Context()
	store, err := sqlite.Open(ctx, t.TempDir()+"/lk.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, store: store, ix: verify.NewIndex(), clock: newClock()}
	e.svc = manage.New(store, e.ix, nil)
	e.svc.Now = e.clock.Now
	e.ver = verify.New(e.ix, nil)
	e.ver.Now = e.clock.Now
	boot, err := e.svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.opID, e.opSecret = boot.ID, boot.Secret
	e.op = latchkey.Actor{Principal: manage.BootstrapPrincipal, Account: latchkey.DefaultAccount, Role: latchkey.RoleOperator, AccessKeyID: boot.ID}
	e.con = &Console{Service: e.svc, Verifier: e.ver, Now: e.clock.Now}
	e.srv = httptest.NewUnstartedServer(nil)
	if setup != nil {
		setup(e.con, "http://"+e.srv.Listener.Addr().String())
	}
	mux := http.NewServeMux()
	e.con.Mount(mux)
	e.portal = &Portal{Console: e.con}
	e.portal.Mount(mux)
	e.srv.Config.Handler = mux
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// app registers an application with one key and returns the key.
func (e *env) app(name string) *manage.CreatedKey {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.svc.CreateApplication(ctx, e.op, latchkey.DefaultAccount, name, "the "+name, nil); err != nil {
		e.t.Fatal(err)
	}
	return e.key(name)
}

func (e *env) key(app string) *manage.CreatedKey {
	e.t.Helper()
	k, err := e.svc.CreateAccessKey(context.Background(), e.op, latchkey.DefaultAccount, app, latchkey.NewAccessKey{Description: "k"})
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

func (e *env) get(id string) *latchkey.AccessKey {
	e.t.Helper()
	k, err := e.svc.GetAccessKey(context.Background(), e.op, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// call verifies a key as a client of the protected API would.
func (e *env) call(secret, ip, ua string) latchkey.Code {
	return e.ver.Verify(&verify.Request{Secret: secret, IP: netip.MustParseAddr(ip), UserAgent: ua}).Code
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see every status.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	// header is added to every request (e.g. Sec-Fetch-Site).
	header http.Header
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, base: e.srv.URL, header: http.Header{}, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (p page) location() string { return p.header.Get("Location") }

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (b *browser) get(path string) page { return b.do("GET", path, nil) }

func (b *browser) post(path string, form url.Values) page { return b.do("POST", path, form) }

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token returns the CSRF token of the page at path.
func (b *browser) token(path string) string {
	b.t.Helper()
	p := b.get(path)
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s (status %d)", path, p.status)
	}
	return m[1]
}

// submit posts form to path with the CSRF token of the page at from.
func (b *browser) submit(from, path string, form url.Values) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.token(from))
	return b.post(path, form)
}

// signIn signs in through the form and returns the response.
func (b *browser) signIn(id, secret string) page {
	b.t.Helper()
	return b.post("/console/signin", url.Values{"csrf": {b.token("/console/signin")}, "access_key_id": {id}, "secret_access_key": {secret}})
}

func (b *browser) mustSignIn(id, secret string) {
	b.t.Helper()
	if p := b.signIn(id, secret); p.status != http.StatusSeeOther || p.location() != "/console/applications" {
		b.t.Fatalf("sign-in: status %d, location %q\n%s", p.status, p.location(), p.body)
	}
}

func newSecretForTest() (string, error) { return keyformat.NewSecret() }

func mustPrefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var onceRE = regexp.MustCompile(`name="once" value="([^"]+)"`)

func formValue(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in page", re)
	}
	return m[1]
}
