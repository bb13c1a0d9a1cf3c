package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// The self-service portal at /portal, for the API provider's customers
// (consumers). A consumer signs in with OIDC through the console's
// provider and client (oidc.go) at the portal's own callback, and the role
// map's consumer rules give them an account and an organisation (the
// owner). They see the applications of that account whose owner is their
// organisation, and nothing else: any other application or key answers
// exactly as one that does not exist. For those applications they list
// the keys (last used, last rejected, quota left), create a key (the
// secret is shown once), rotate one with the console's five-step wizard
// and traffic chart, deactivate, reactivate and delete. They cannot
// change restrictions, quotas or anything else: a key they create gets
// the application's restrictions and the account's key policy.
//
// Every change goes through manage.Service as an actor named after the
// person and the organisation ("oidc:EMAIL (sub SUB) consumer of ORG"),
// so the audit log says who did it for whom. The actor has the admin role
// in the account only inside these handlers, each of which first checks
// the object's owner.
//
// Portal sessions are kept apart from console sessions: their own store,
// cookie (latchkey_portal, Path=/portal, or __Host-latchkey_portal over
// TLS) and CSRF tokens. A console cookie opens nothing here and a portal
// cookie nothing in the console. Pages carry the console's headers and
// Content-Security-Policy; the only addition is the https origin of the
// account's logo in img-src. The account's colours come from a generated
// stylesheet (/portal/brand.css), never from inline style.

// PortalPrefix is where the portal is served.
const PortalPrefix = "/portal"

// Portal cookies.
const (
	cookiePortal           = "latchkey_portal"
	cookiePortalSecure     = "__Host-latchkey_portal"
	cookiePortalOIDC       = "latchkey_portal_oidc"
	cookiePortalOIDCSecure = "__Host-latchkey_portal_oidc"
)

// msgPortalNoRole refuses a person the role map gives no consumer rule.
const msgPortalNoRole = "Your identity provider account is not given access to this portal. Ask the API provider to add your organisation."

// Portal is the consumer portal. It shares the console's service,
// verifier, OIDC provider, clock, proxies and timeouts; set Console (with
// OIDC) and call Mount once.
type Portal struct {
	Console *Console

	once     sync.Once
	sessions *sessionStore
	mux      *http.ServeMux
	pages    map[string]*template.Template
}

func (p *Portal) init() {
	p.once.Do(func() {
		p.Console.init()
		p.sessions = newSessionStore()
		if o := p.Console.OIDC; o != nil {
			o.endMu.Lock()
			o.ended = append(o.ended, p.sessions)
			o.endMu.Unlock()
		}
		p.pages = parsePortalPages()
		p.mux = p.routes()
	})
}

// Mount registers the portal on mux at /portal.
func (p *Portal) Mount(mux *http.ServeMux) {
	h := p.Handler()
	mux.Handle(PortalPrefix+"/", h)
	mux.Handle(PortalPrefix, h)
}

// Handler returns the portal's handler for every path under /portal.
func (p *Portal) Handler() http.Handler {
	p.init()
	return http.HandlerFunc(p.serve)
}

func (p *Portal) routes() *http.ServeMux {
	m := http.NewServeMux()
	c := p.Console
	m.HandleFunc("GET /portal", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, PortalPrefix+"/", http.StatusSeeOther)
	})
	m.HandleFunc("GET /portal/{$}", p.index)
	m.HandleFunc("GET /portal/static/{file}", c.serveStatic)
	m.HandleFunc("GET /portal/brand.css", p.brandCSS)
	m.HandleFunc("GET /portal/signin", p.signinPage)
	m.Handle("POST /portal/signout", p.form(p.signout))
	if c.OIDC != nil {
		m.HandleFunc("GET /portal/oidc/login", p.oidcLogin)
		m.HandleFunc("GET /portal/oidc/callback", p.oidcCallback)
	}
	m.Handle("GET /portal/applications", p.page(p.applications))
	m.Handle("GET /portal/applications/{name}", p.page(p.application))
	m.Handle("POST /portal/applications/{name}/keys", p.form(p.createKey))
	m.Handle("GET /portal/keys/{id}", p.page(p.key))
	m.Handle("GET /portal/keys/{id}/chart", p.fragment(p.chartFragment))
	m.Handle("GET /portal/keys/{id}/rotate", p.page(p.rotate))
	m.Handle("POST /portal/keys/{id}/status", p.form(p.setStatus))
	m.Handle("POST /portal/keys/{id}/delete", p.form(p.deleteKey))
	return m
}

// serve sets the console's security headers and routes the request,
// answering unknown paths and methods with portal pages.
func (p *Portal) serve(w http.ResponseWriter, r *http.Request) {
	p.Console.serveSurface(w, r, p.mux, p.renderError, "There is no such page in the portal.")
}

// portalSessionCookie carries a portal session ID: HttpOnly,
// SameSite=Strict, Path=/portal, or __Host- and Secure over TLS. Its name
// is not the console's, so neither surface reads the other's.
func (p *Portal) sessionCookie(r *http.Request, value string) *http.Cookie {
	ck := &http.Cookie{Name: cookiePortal, Value: value, Path: PortalPrefix, HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if p.Console.secure(r) {
		ck.Name, ck.Path, ck.Secure = cookiePortalSecure, "/", true
	}
	if value == "" {
		ck.MaxAge = -1
	}
	return ck
}

func (p *Portal) sessionID(r *http.Request) string {
	if p.Console.secure(r) {
		return cookieValue(r, cookiePortalSecure)
	}
	return cookieValue(r, cookiePortal)
}

// consumerActor is who a consumer's changes are audited as.
func consumerActor(pe *person, g grant) latchkey.Actor {
	return latchkey.Actor{Principal: pe.actorName() + " consumer of " + g.Owner, Account: g.Account, Role: latchkey.RoleAdmin}
}

// authenticate returns the request's live consumer. The person is checked
// with the IdP again every OIDC revalidation interval, and the grant is
// what the consumer rules give now: a person whose organisation changed
// sees the new one's applications, one no rule matches is signed out.
func (p *Portal) authenticate(r *http.Request, automatic bool) (*user, string) {
	c := p.Console
	now := c.now()
	sv, ok, expired := p.sessions.get(p.sessionID(r), now, c.IdleTimeout, c.MaxSessionAge, !automatic)
	if !ok {
		if expired {
			return nil, "expired"
		}
		return nil, ""
	}
	pe := sv.person
	if pe == nil || !pe.consumer || c.OIDC == nil {
		p.sessions.delete(sv.id)
		return nil, "revoked"
	}
	g, err := c.OIDC.current(context.WithoutCancel(r.Context()), pe, now)
	if err != nil || !g.Consumer || g.Owner == "" {
		p.sessions.delete(sv.id)
		c.Log.Info("portal session ended by the IdP", "oidc_subject", pe.Subject, "email", pe.Email)
		return nil, "idp"
	}
	a := consumerActor(pe, g)
	a.SourceIP, a.UserAgent = c.clientIP(r).String(), r.UserAgent()
	sv.account = g.Account
	return &user{sessionView: sv, actor: a, base: PortalPrefix, owner: g.Owner}, ""
}

func (p *Portal) page(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, why := p.authenticate(r, r.URL.Query().Get("auto") == "1")
		if u == nil {
			q := url.Values{"next": {r.URL.RequestURI()}}
			if why != "" {
				q.Set("m", why)
			}
			http.Redirect(w, r, PortalPrefix+"/signin?"+q.Encode(), http.StatusSeeOther)
			return
		}
		if err := h(w, r, u); err != nil {
			p.fail(w, r, u, err)
		}
	})
}

func (p *Portal) fragment(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := p.authenticate(r, true)
		if u == nil {
			http.Error(w, "session ended; reload the page to sign in again", http.StatusUnauthorized)
			return
		}
		if err := h(w, r, u); err != nil {
			code := latchkey.ErrorCode(err)
			if statusFor(code) >= 500 {
				p.Console.Log.Error("portal fragment failed", "path", r.URL.Path, "err", err)
			}
			http.Error(w, latchkey.ErrorMessage(err), statusFor(code))
		}
	})
}

// form wraps a POST handler exactly as the console's form does:
// cross-origin requests, requests without a live portal session and
// requests without the session's CSRF token are refused with 403 and
// change nothing.
func (p *Portal) form(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.Console.cop.Check(r); err != nil {
			p.renderError(w, r, nil, http.StatusForbidden, "This request came from another site and was refused (cross-site request forgery protection).")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		if err := r.ParseForm(); err != nil {
			p.renderError(w, r, nil, http.StatusBadRequest, "The form could not be read (it may be too large).")
			return
		}
		u, _ := p.authenticate(r, false)
		if u == nil {
			p.renderError(w, r, nil, http.StatusForbidden, "Your session has ended, so nothing was changed. Sign in again and repeat the action.")
			return
		}
		if !tokensEqual(r.PostForm.Get("csrf"), u.csrf) {
			p.renderError(w, r, u, http.StatusForbidden, "This form is missing its security token or has an old one, so nothing was changed (cross-site request forgery protection). Reload the page and try again.")
			return
		}
		if err := h(w, r, u); err != nil {
			p.fail(w, r, u, err)
		}
	})
}

func (p *Portal) fail(w http.ResponseWriter, r *http.Request, u *user, err error) {
	code := latchkey.ErrorCode(err)
	status := statusFor(code)
	if status >= 500 {
		p.Console.Log.Error("portal request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	p.renderError(w, r, u, status, latchkey.ErrorMessage(err))
}

func (p *Portal) back(w http.ResponseWriter, r *http.Request, u *user, to string, f flash) error {
	if f.Message != "" {
		p.sessions.addFlash(u.id, f)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func (p *Portal) backOnUserError(w http.ResponseWriter, r *http.Request, u *user, to string, err error) error {
	if userError(err) {
		return p.back(w, r, u, to, flash{Error: true, Message: latchkey.ErrorMessage(err)})
	}
	return err
}

// portalNext returns next when it is a page of the portal, else the
// applications, so that the redirect after sign-in stays on /portal.
func portalNext(next string) string { return nextWithin(PortalPrefix, next) }

func (p *Portal) index(w http.ResponseWriter, r *http.Request) {
	if u, _ := p.authenticate(r, false); u != nil {
		http.Redirect(w, r, PortalPrefix+"/applications", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, PortalPrefix+"/signin", http.StatusSeeOther)
}

// ownedApp returns the application when it is the consumer's
// organisation's; any other answers as an unknown application does.
func (p *Portal) ownedApp(ctx context.Context, u *user, name string) (*latchkey.Application, error) {
	notFound := latchkey.Errorf(latchkey.ENOTFOUND, "application %q not found", name)
	app, err := p.Console.Service.GetApplication(ctx, u.actor, u.account, name)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
			return nil, notFound
		}
		return nil, err
	}
	if u.owner == "" || app.Owner != u.owner {
		return nil, notFound
	}
	return app, nil
}

// ownedKey returns an application key (not a canary) of one of the
// consumer's applications; any other answers as an unknown key does.
func (p *Portal) ownedKey(ctx context.Context, u *user, id string) (*latchkey.AccessKey, *latchkey.Application, error) {
	notFound := latchkey.Errorf(latchkey.ENOTFOUND, "access key %s not found", id)
	if !keyformat.ValidID(id) {
		return nil, nil, notFound
	}
	k, err := p.Console.Service.GetAccessKey(ctx, u.actor, id)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
			return nil, nil, notFound
		}
		return nil, nil, err
	}
	if k.Application == "" || k.Canary || k.Account != u.account {
		return nil, nil, notFound
	}
	app, err := p.ownedApp(ctx, u, k.Application)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
			return nil, nil, notFound
		}
		return nil, nil, err
	}
	return k, app, nil
}

// keysOf lists an application's keys without canaries.
func (p *Portal) keysOf(ctx context.Context, u *user, app string) ([]*latchkey.AccessKey, error) {
	keys, _, err := p.Console.Service.ListAccessKeys(ctx, u.actor, latchkey.AccessKeyFilter{Account: u.account, Application: app, Kind: "application", Limit: 1000})
	if err != nil {
		return nil, err
	}
	out := keys[:0]
	for _, k := range keys {
		if !k.Canary {
			out = append(out, k)
		}
	}
	return out, nil
}

func portalAppURL(name string) string { return PortalPrefix + "/applications/" + url.PathEscape(name) }
func portalKeyURL(id string) string   { return PortalPrefix + "/keys/" + url.PathEscape(id) }

type portalAppsData struct {
	Apps []appRow
	Next string
}

func (p *Portal) applications(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	apps, next, err := p.Console.Service.ListApplications(ctx, u.actor, latchkey.ApplicationFilter{
		Account: u.account, Owner: u.owner, After: r.URL.Query().Get("page_token"), Limit: 100})
	if err != nil {
		return err
	}
	d := portalAppsData{Next: next}
	for _, a := range apps {
		if a.Owner != u.owner { // the store filters; this is the second lock
			continue
		}
		keys, err := p.keysOf(ctx, u, a.Name)
		if err != nil {
			return err
		}
		d.Apps = append(d.Apps, appRow{App: a, Keys: keys})
	}
	p.render(w, r, u, http.StatusOK, "portal_applications", "Your applications", d)
	return nil
}

type portalAppData struct {
	App       *latchkey.Application
	Keys      []*latchkey.AccessKey
	MaxKeys   int
	CanCreate bool
	Nonce     string
}

func (p *Portal) application(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	app, err := p.ownedApp(ctx, u, r.PathValue("name"))
	if err != nil {
		return err
	}
	keys, err := p.keysOf(ctx, u, app.Name)
	if err != nil {
		return err
	}
	d := portalAppData{App: app, Keys: keys, MaxKeys: p.Console.Service.MaxKeysPerApplication}
	d.CanCreate = len(keys) < d.MaxKeys
	if d.CanCreate {
		if d.Nonce, err = p.sessions.newNonce(u.id, p.Console.now()); err != nil {
			return err
		}
	}
	p.render(w, r, u, http.StatusOK, "portal_application", app.Name, d)
	return nil
}

type portalKeyData struct {
	Key     *latchkey.AccessKey
	App     *latchkey.Application
	Chart   *chartModel
	Periods []periodLink
}

func (p *Portal) key(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, app, err := p.ownedKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	hours, _ := strconv.Atoi(r.URL.Query().Get("hours"))
	chart, err := p.Console.chartOf(ctx, u, k, nil, hours)
	if err != nil {
		return err
	}
	periods := periodLinks(chart.Hours, func(hours int) string {
		if hours == 0 {
			return portalKeyURL(k.ID)
		}
		return portalKeyURL(k.ID) + "?hours=" + strconv.Itoa(hours)
	})
	p.renderRefreshing(w, r, u, "portal_key", k.ID, portalKeyData{Key: k, App: app, Chart: chart, Periods: periods})
	return nil
}

func (p *Portal) chartFragment(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, _, err := p.ownedKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	var nk *latchkey.AccessKey
	if with := r.URL.Query().Get("with"); with != "" {
		if nk, _, err = p.ownedKey(ctx, u, with); err != nil {
			return err
		}
	}
	hours, _ := strconv.Atoi(r.URL.Query().Get("hours"))
	m, err := p.Console.chartOf(ctx, u, k, nk, hours)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := p.pages["chart"].ExecuteTemplate(&b, "chart", m); err != nil {
		return latchkey.Internal(err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
	return nil
}

// rotate is the console's rotation wizard for a consumer's key.
func (p *Portal) rotate(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	old, _, err := p.ownedKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	d, err := p.Console.rotateModel(ctx, u, old, r.URL.Query(), func() (string, error) { return p.sessions.newNonce(u.id, p.Console.now()) })
	if err != nil {
		return err
	}
	if d.New != nil {
		// the successor must be the consumer's too (it is: same application)
		if _, _, err := p.ownedKey(ctx, u, d.New.ID); err != nil {
			return err
		}
	}
	title := "Rotate " + old.ID
	if d.Step == 5 {
		p.render(w, r, u, http.StatusOK, "rotate", title, d)
		return nil
	}
	p.renderRefreshing(w, r, u, "rotate", title, d)
	return nil
}

// createKey creates a key of one of the consumer's applications with the
// application's restrictions (none of the consumer's own) and shows its
// secret on the only page that ever does.
func (p *Portal) createKey(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	app, err := p.ownedApp(ctx, u, r.PathValue("name"))
	if err != nil {
		return err
	}
	back := portalAppURL(app.Name)
	rotate := r.PostForm.Get("rotate")
	if rotate != "" {
		if _, _, err := p.ownedKey(ctx, u, rotate); err != nil {
			rotate = ""
		} else {
			back = rotateURLAt(PortalPrefix, rotate, 1, "", 0)
		}
	}
	if !p.sessions.useNonce(u.id, r.PostForm.Get("once")) {
		return p.back(w, r, u, back, flash{Error: true, Message: "That form had already been used, so no key was created. " +
			"A secret is shown only once: if you did not save it, deactivate that key and create another."})
	}
	in := latchkey.NewAccessKey{Description: strings.TrimSpace(r.PostForm.Get("description"))}
	if v := strings.TrimSpace(r.PostForm.Get("expires")); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return p.back(w, r, u, back, flash{Error: true, Message: fmt.Sprintf("Expiry %q must be a date such as 2027-01-31.", v)})
		}
		in.ExpiresAt = &t
	}
	ck, err := p.Console.Service.CreateAccessKey(ctx, u.actor, u.account, app.Name, in)
	if err != nil {
		return p.backOnUserError(w, r, u, back, err)
	}
	p.Console.Log.Info("portal key created", "access_key_id", ck.ID, "application", app.Name, "owner", u.owner, "actor", u.actor.Principal)
	d := createdData{Key: ck.AccessKey, Secret: ck.Secret, Next: portalAppURL(app.Name), NextText: "I have saved the secret: back to " + app.Name}
	if rotate != "" {
		d.Next, d.NextText = rotateURLAt(PortalPrefix, rotate, 2, ck.ID, 0), "I have saved the secret: continue to step 2, move your clients"
	}
	d.CredFile = fmt.Sprintf("[%s]\nlatchkey_access_key_id = %s\nlatchkey_secret_access_key = %s\n", app.Name, ck.ID, ck.Secret)
	d.DotEnv = fmt.Sprintf("LATCHKEY_ACCESS_KEY_ID=%s\nLATCHKEY_SECRET_ACCESS_KEY=%s\n", ck.ID, ck.Secret)
	v := p.newView(r, u, "Access key created", d)
	w.Header().Set("Cache-Control", "no-store, max-age=0")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Referrer-Policy", "no-referrer")
	p.write(w, r, u, http.StatusCreated, "created", v)
	return nil
}

// portalReturn is where a key action goes back to, from a fixed set.
func portalReturn(r *http.Request, k *latchkey.AccessKey, after string) string {
	newID := r.PostForm.Get("new")
	if !keyformat.ValidID(newID) {
		newID = ""
	}
	hours, _ := strconv.Atoi(r.PostForm.Get("hours"))
	if _, ok := chartHoursOK(hours); !ok {
		hours = 0
	}
	if r.PostForm.Get("return") == "rotate" {
		switch after {
		case "Inactive":
			return rotateURLAt(PortalPrefix, k.ID, 4, newID, hours)
		case "Active":
			return rotateURLAt(PortalPrefix, k.ID, 3, newID, hours)
		case "unconfirmed":
			return rotateURLAt(PortalPrefix, k.ID, 5, newID, hours)
		}
	}
	if after == "deleted" {
		return portalAppURL(k.Application)
	}
	return portalKeyURL(k.ID)
}

func (p *Portal) setStatus(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, _, err := p.ownedKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	st, err := latchkey.ParseStatus(r.PostForm.Get("status"))
	if err != nil {
		return p.backOnUserError(w, r, u, portalKeyURL(k.ID), err)
	}
	if _, err := p.Console.Service.UpdateAccessKey(ctx, u.actor, k.ID, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
		return p.backOnUserError(w, r, u, portalReturn(r, k, ""), err)
	}
	msg := "Access key " + k.ID + " is now Active: calls with it are accepted again."
	if st == latchkey.StatusInactive {
		msg = "Access key " + k.ID + " is now Inactive: calls with it are refused. Make it Active again if something breaks."
	}
	return p.back(w, r, u, portalReturn(r, k, string(st)), flash{Message: msg})
}

func (p *Portal) deleteKey(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, _, err := p.ownedKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	if strings.TrimSpace(r.PostForm.Get("confirm")) != k.ID {
		to := portalKeyURL(k.ID)
		if r.PostForm.Get("return") == "rotate" {
			to = portalReturn(r, k, "unconfirmed")
		}
		return p.back(w, r, u, to, flash{Error: true, Message: "Type the access key ID exactly to delete the key. Nothing was deleted."})
	}
	// never force: the service refuses to delete an Active key
	if err := p.Console.Service.DeleteAccessKey(ctx, u.actor, k.ID, false); err != nil {
		return p.backOnUserError(w, r, u, portalKeyURL(k.ID), err)
	}
	msg := "Access key " + k.ID + " deleted. Calls with it now fail as an unknown key."
	if r.PostForm.Get("return") == "rotate" {
		msg = "Rotation finished: the old key " + k.ID + " is deleted."
	}
	return p.back(w, r, u, portalReturn(r, k, "deleted"), flash{Message: msg})
}

// Sign-in.

type portalSigninData struct {
	Next   string
	Notice string
	Error  string
	SSO    bool
}

func (p *Portal) signinPage(w http.ResponseWriter, r *http.Request) {
	if u, _ := p.authenticate(r, false); u != nil {
		http.Redirect(w, r, portalNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	next := r.URL.Query().Get("next")
	d := portalSigninData{Notice: signinNotices[r.URL.Query().Get("m")], SSO: p.Console.OIDC != nil}
	if portalNext(next) == next {
		d.Next = next
	}
	p.renderSignin(w, r, http.StatusOK, d)
}

func (p *Portal) renderSignin(w http.ResponseWriter, r *http.Request, status int, d portalSigninData) {
	d.SSO = p.Console.OIDC != nil
	if !d.SSO && d.Error == "" {
		d.Error = "Single sign-on is not set up on this server, so nobody can sign in to the portal. Ask the API provider."
	}
	p.render(w, r, nil, status, "portal_signin", "Sign in", d)
}

func (p *Portal) oidcLogin(w http.ResponseWriter, r *http.Request) {
	c := p.Console
	if err := c.OIDC.begin(w, r, &c.OIDC.portal, c.secure(r), portalNext(r.URL.Query().Get("next"))); err != nil {
		p.fail(w, r, nil, err)
	}
}

func (p *Portal) oidcCallback(w http.ResponseWriter, r *http.Request) {
	c := p.Console
	ip := c.clientIP(r).String()
	pe, next, refused := c.OIDC.finish(w, r, &c.OIDC.portal, c.secure(r), c.Log, ip, c.now())
	if refused != nil {
		p.renderSignin(w, r, refused.status, portalSigninData{Error: refused.msg})
		return
	}
	g := pe.grant
	sid, err := p.sessions.createPerson(consumerActor(pe, g), pe, c.now(), c.IdleTimeout, c.MaxSessionAge)
	if err != nil {
		p.fail(w, r, nil, err)
		return
	}
	c.Log.Info("portal sign-in", "oidc_subject", pe.Subject, "email", pe.Email, "account", g.Account, "owner", g.Owner,
		"role_map_rule", g.Rule, "client_ip", ip)
	http.SetCookie(w, p.sessionCookie(r, sid))
	// a page, not a redirect: see Console.oidcCallback
	v := p.newView(r, nil, "Signed in", continueData{Next: portalNext(next)})
	v.Continue = portalNext(next)
	p.write(w, r, nil, http.StatusOK, "portal_continue", v)
}

func (p *Portal) signout(w http.ResponseWriter, r *http.Request, u *user) error {
	p.sessions.delete(u.id)
	if u.person != nil {
		p.Console.Log.Info("portal sign-out", "oidc_subject", u.person.Subject, "email", u.person.Email)
	}
	http.SetCookie(w, p.sessionCookie(r, ""))
	http.Redirect(w, r, PortalPrefix+"/signin?m=signedout", http.StatusSeeOther)
	return nil
}

// Pages.

// portalView is what every portal template receives: the console's view
// (so that shared templates such as the rotation wizard render unchanged)
// with the account's branding.
type portalView struct {
	*view
	Brand     *latchkey.Branding
	BrandCSS  string // the generated stylesheet's URL, "" without colours
	BrandName string
}

func (p *Portal) newView(r *http.Request, u *user, title string, data any) *portalView {
	c := p.Console
	v := &view{Title: title, Now: c.now(), Version: c.version, Data: data}
	pv := &portalView{view: v, BrandName: "API keys"}
	if u == nil {
		return pv
	}
	v.User = &userView{Principal: personLabel(u.person), Person: true, Account: u.account, CanWrite: true}
	v.CSRF = u.csrf
	v.Flash = p.sessions.takeFlash(u.id)
	if b := p.branding(r.Context(), u.account); b != nil {
		pv.Brand = b
		if b.Name != "" {
			pv.BrandName = b.Name
		}
		if b.PrimaryColor != "" || b.AccentColor != "" {
			pv.BrandCSS = PortalPrefix + "/brand.css?v=" + brandVersion(b)
		}
	}
	return pv
}

// branding reads the account's branding (nil when unset or unreadable).
func (p *Portal) branding(ctx context.Context, account string) *latchkey.Branding {
	accs, err := p.Console.Service.ListAccounts(ctx, latchkey.Actor{Account: account, Role: latchkey.RoleViewer})
	if err != nil || len(accs) != 1 || accs[0].Branding.Empty() || accs[0].Branding.Validate() != nil {
		return nil
	}
	return accs[0].Branding
}

func brandVersion(b *latchkey.Branding) string {
	h := sha256.Sum256([]byte(b.PrimaryColor + "/" + b.AccentColor))
	return hex.EncodeToString(h[:6])
}

func (p *Portal) render(w http.ResponseWriter, r *http.Request, u *user, status int, name, title string, data any) {
	p.write(w, r, u, status, name, p.newView(r, u, title, data))
}

func (p *Portal) renderRefreshing(w http.ResponseWriter, r *http.Request, u *user, name, title string, data any) {
	v := p.newView(r, u, title, data)
	v.Refresh = 30
	q := r.URL.Query()
	q.Set("auto", "1")
	v.RefreshURL = r.URL.Path + "?" + q.Encode()
	p.write(w, r, u, http.StatusOK, name, v)
}

// write renders a page. With a logo, the page's policy allows images from
// the logo's https origin too, and from nowhere else.
func (p *Portal) write(w http.ResponseWriter, r *http.Request, u *user, status int, name string, v *portalView) {
	t := p.pages[name]
	if t == nil {
		panic("portal: no template " + name)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "page", v); err != nil {
		p.Console.Log.Error("portal template failed", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if v.Brand != nil && v.Brand.LogoURL != "" {
		if lu, err := url.Parse(v.Brand.LogoURL); err == nil && lu.Scheme == "https" && lu.Host != "" {
			w.Header().Set("Content-Security-Policy", strings.Replace(ContentSecurityPolicy, "img-src 'self';",
				"img-src 'self' https://"+lu.Host+";", 1))
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (p *Portal) renderError(w http.ResponseWriter, r *http.Request, u *user, status int, msg string) {
	heading := http.StatusText(status)
	if status == http.StatusForbidden {
		heading = "Refused"
	}
	p.write(w, r, u, status, "portal_error", p.newView(r, u, heading, errorData{Status: status, Heading: heading, Message: msg}))
}

// brandCSS is the signed-in consumer's account's colours as a stylesheet:
// the strict style-src 'self' stays, and no inline style is needed. The
// colours were validated as hex when set and are checked again here.
func (p *Portal) brandCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	u, _ := p.authenticate(r, true)
	if u == nil {
		return // an empty stylesheet: the default look
	}
	b := p.branding(r.Context(), u.account)
	if b == nil {
		return
	}
	var css strings.Builder
	css.WriteString("/* branding of the account */\n")
	if hexColor(b.PrimaryColor) {
		fmt.Fprintf(&css, ".portal .top { background: %s; color: %s; }\n.portal .top a, .portal .top button.link { color: %s; }\n",
			b.PrimaryColor, textOn(b.PrimaryColor), textOn(b.PrimaryColor))
	}
	if hexColor(b.AccentColor) {
		fmt.Fprintf(&css, ".portal { --accent: %s; --accent-fg: %s; }\n", b.AccentColor, textOn(b.AccentColor))
	}
	_, _ = w.Write([]byte(css.String()))
}

// hexColor reports whether s is #rgb or #rrggbb.
func hexColor(s string) bool {
	return (&latchkey.Branding{PrimaryColor: s}).Validate() == nil && s != ""
}

// textOn returns black or white, whichever reads better on the colour
// (WCAG relative luminance).
func textOn(hexc string) string {
	h := strings.TrimPrefix(hexc, "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return "#fff"
	}
	lin := func(c uint64) float64 {
		x := float64(c) / 255
		if x <= 0.03928 {
			return x / 12.92
		}
		return math.Pow((x+0.055)/1.055, 2.4)
	}
	l := 0.2126*lin(v>>16&0xff) + 0.7152*lin(v>>8&0xff) + 0.0722*lin(v&0xff)
	if (l+0.05)/0.05 > 1.05/(l+0.05) {
		return "#000"
	}
	return "#fff"
}

// portalPageNames are the portal's templates; rotate and created are the
// console's own, shared.
var portalPageNames = []string{"portal_applications", "portal_application", "portal_key", "portal_signin", "portal_continue", "portal_error", "rotate", "created"}

func parsePortalPages() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/portal_layout.html", "templates/partials.html", "templates/chart.html"))
	pages := map[string]*template.Template{}
	for _, name := range portalPageNames {
		t := template.Must(base.Clone())
		pages[name] = template.Must(t.ParseFS(templateFS, "templates/"+name+".html"))
	}
	pages["chart"] = base
	return pages
}
