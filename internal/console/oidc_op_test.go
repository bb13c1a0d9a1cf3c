package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// The OpenID Provider of these tests is the example OP of
// github.com/zitadel/oidc (a certified OpenID Connect library this project
// did not write), started in process: discovery, JWKS, the authorization
// endpoint with its username and password page, PKCE, the token endpoint
// with refresh tokens, and userinfo. Its users are ours: testOP adds them
// with random passwords, gives them a "groups" claim, and can remove them.

// opUsers is the OP's user directory (storage.UserStore), which tests
// change while the OP runs.
type opUsers struct {
	mu     sync.Mutex
	users  map[string]*storage.User
	groups map[string][]string
}

func (u *opUsers) GetUserByID(id string) *storage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.users[id]
}

func (u *opUsers) GetUserByUsername(name string) *storage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.users {
		if x.Username == name {
			return x
		}
	}
	return nil
}

func (u *opUsers) ExampleClientID() string { return storage.ServiceUserID }

func (u *opUsers) groupsOf(id string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.groups[id]...)
}

// opStorage is the example storage with a "groups" claim in ID tokens and
// userinfo, as Okta, Keycloak, Entra ID and Dex can be set to send.
type opStorage struct {
	*storage.Storage
	users *opUsers
}

func (s opStorage) SetUserinfoFromRequest(ctx context.Context, ui *zoidc.UserInfo, token op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, token, scopes); err != nil {
		return err
	}
	ui.AppendClaims("groups", s.users.groupsOf(token.GetSubject()))
	return nil
}

func (s opStorage) SetUserinfoFromToken(ctx context.Context, ui *zoidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	ui.AppendClaims("groups", s.users.groupsOf(ui.Subject))
	return nil
}

// testOP is a running example OP.
type testOP struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string
	users  *opUsers
}

// opClients serializes registrations: the example keeps its clients in a
// package variable.
var opClients sync.Mutex

func newTestOP(t *testing.T) *testOP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/"
	users := &opUsers{users: map[string]*storage.User{}, groups: map[string][]string{}}
	opClients.Lock()
	st := opStorage{Storage: storage.NewStorage(users), users: users}
	opClients.Unlock()
	srv.Config.Handler = exampleop.SetupServer(issuer, st, nil, false)
	srv.Config.ErrorLog = nil
	srv.Start()
	t.Cleanup(srv.Close)
	return &testOP{t: t, srv: srv, issuer: issuer, users: users}
}

// addUser adds a person with a random password and returns the password.
func (o *testOP) addUser(id, email string, groups ...string) string {
	o.t.Helper()
	pw, err := randomToken()
	if err != nil {
		o.t.Fatal(err)
	}
	o.users.mu.Lock()
	defer o.users.mu.Unlock()
	o.users.users[id] = &storage.User{ID: id, Username: id, Password: pw, FirstName: id, LastName: "Test", Email: email,
		EmailVerified: true, PreferredLanguage: language.English}
	o.users.groups[id] = groups
	return pw
}

func (o *testOP) removeUser(id string) {
	o.users.mu.Lock()
	defer o.users.mu.Unlock()
	delete(o.users.users, id)
}

func (o *testOP) setGroups(id string, groups ...string) {
	o.users.mu.Lock()
	defer o.users.mu.Unlock()
	o.users.groups[id] = groups
}

// client registers a confidential web client for the console at
// consoleURL and returns its ID and (random) secret.
func (o *testOP) client(consoleURL string) (id, secret string) {
	o.t.Helper()
	var err error
	if id, err = randomToken(); err != nil {
		o.t.Fatal(err)
	}
	if secret, err = randomToken(); err != nil {
		o.t.Fatal(err)
	}
	id = "latchkey-" + id[:12]
	opClients.Lock()
	storage.RegisterClients(storage.WebClient(id, secret, consoleURL+Prefix+"/oidc/callback", consoleURL+PortalPrefix+"/oidc/callback"))
	opClients.Unlock()
	return id, secret
}

// testRoleMap: group lk-ops are operators, lk-admins admins of default,
// lk-viewers viewers of default.
const testRoleMap = `
rules:
  - values: [lk-ops]
    role: operator
  - values: [lk-admins]
    account: default
    role: admin
  - claim: groups
    values: [lk-viewers]
    account: default
    role: viewer
`

// oidcFor makes the console's OIDC for this OP and the console at
// consoleURL.
func (o *testOP) oidcFor(consoleURL string, revalidate time.Duration) *OIDC {
	o.t.Helper()
	return o.oidcWith(consoleURL, revalidate, testRoleMap)
}

// oidcWith is oidcFor with another role map.
func (o *testOP) oidcWith(consoleURL string, revalidate time.Duration, roleMap string) *OIDC {
	o.t.Helper()
	id, secret := o.client(consoleURL)
	rm, err := ParseRoleMap([]byte(roleMap))
	if err != nil {
		o.t.Fatal(err)
	}
	oi, err := NewOIDC(context.WithoutCancel(o.t.Context()), OIDCConfig{Issuer: o.issuer, ClientID: id, ClientSecret: secret,
		RedirectURL: consoleURL + Prefix + "/oidc/callback", RoleMap: rm, Revalidate: revalidate})
	if err != nil {
		o.t.Fatal(err)
	}
	return oi
}

// oidcEnv is a console (the env of env_test.go) with SSO through a test OP.
type oidcEnv struct {
	*env
	idp *testOP
}

func newOIDCEnv(t *testing.T, revalidate time.Duration) *oidcEnv {
	t.Helper()
	o := newTestOP(t)
	e := newEnvWith(t, func(c *Console, consoleURL string) { c.OIDC = o.oidcFor(consoleURL, revalidate) })
	return &oidcEnv{env: e, idp: o}
}

var opLoginIDRE = regexp.MustCompile(`name="id" value="([^"]+)"`)

// ssoStart follows the console's SSO button to the OP's login page and
// returns the OP's auth request ID. The browser b keeps the flow cookie.
func (e *oidcEnv) ssoStart(b *browser, next string) (authRequest string) {
	e.t.Helper()
	p := b.get(Prefix + "/oidc/login?next=" + url.QueryEscape(next))
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), e.idp.issuer) {
		e.t.Fatalf("SSO start: status %d, location %q", p.status, p.location())
	}
	body := e.opGet(b, p.location())
	return formValue(e.t, opLoginIDRE, body)
}

// opGet follows the OP's redirects up to its login page and returns it.
func (e *oidcEnv) opGet(b *browser, u string) string {
	e.t.Helper()
	for range 5 {
		resp, err := b.c.Get(u)
		if err != nil {
			e.t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
			next, err := resp.Request.URL.Parse(loc)
			if err != nil {
				e.t.Fatal(err)
			}
			u = next.String()
			continue
		}
		return string(raw)
	}
	e.t.Fatalf("too many redirects at the OP")
	return ""
}

// ssoLogin signs in at the OP and returns the URL the OP sends the browser
// back to (the console's callback, with code and state), not yet followed.
func (e *oidcEnv) ssoLogin(b *browser, authRequest, user, password string) *url.URL {
	e.t.Helper()
	resp, err := b.c.PostForm(e.idp.issuer+"login/username", url.Values{"id": {authRequest}, "username": {user}, "password": {password}})
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	first, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	u := first.String()
	for range 5 {
		if strings.HasPrefix(u, b.base+Prefix+"/oidc/callback") || strings.HasPrefix(u, b.base+PortalPrefix+"/oidc/callback") {
			return mustURL(e.t, u)
		}
		resp, err := b.c.Get(u)
		if err != nil {
			e.t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if loc == "" {
			e.t.Fatalf("OP at %s answered %d without a redirect", u, resp.StatusCode)
		}
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			e.t.Fatal(err)
		}
		u = next.String()
	}
	e.t.Fatalf("the OP never sent the browser back to the console")
	return nil
}

// sso signs b in through the OP as user and returns the callback's page.
func (e *oidcEnv) sso(b *browser, next, user, password string) page {
	e.t.Helper()
	id := e.ssoStart(b, next)
	cb := e.ssoLogin(b, id, user, password)
	return b.get(cb.RequestURI())
}
