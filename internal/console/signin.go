package console

import (
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// Sign-in messages. Those that say more than "no match" are reached only by
// someone who typed the right secret for the ID, so they tell an attacker
// nothing.
const (
	msgSigninEmpty     = "Enter the access key ID and the secret access key of an admin principal."
	msgSigninBadID     = "An access key ID is LKIA followed by 16 letters and digits 2 to 7 (20 characters)."
	msgSigninMalformed = "That is not a latchkey secret access key: one starts with lksk_ and has 51 characters, the last 6 a checksum. Check for a missing or extra character."
	msgSigninNoMatch   = "The access key ID and secret access key do not match an admin access key. Application keys cannot sign in to the console."
	msgSigninInactive  = "This admin access key is Inactive. Sign in with another key, or ask an operator to make it Active."
	msgSigninExpired   = "This admin access key has expired. Sign in with another key, or ask an operator for a new one."
	msgSigninVerifier  = "This key's principal has the role verifier, which may only verify keys. Sign in with an operator, admin or viewer key."
	msgSigninToken     = "The sign-in form had expired or came from another site, so it was refused. Sign in again on this page."
)

var signinNotices = map[string]string{
	"expired":   "Your session has ended. Sign in again.",
	"revoked":   "Your session ended because the admin access key it used is no longer Active.",
	"signedout": "You have signed out.",
	"idp":       "Your session ended because your identity provider no longer confirms your sign-in or your role. Sign in again.",
}

type signinData struct {
	Token       string
	Next        string
	AccessKeyID string
	Notice      string
	Error       string
	// SSO offers sign-in with the OpenID Provider; KeySignin the access-key
	// form.
	SSO       bool
	KeySignin bool
}

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	if u, _ := c.authenticate(r, false); u != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	d := signinData{Next: safeNext(r.URL.Query().Get("next")), Notice: signinNotices[r.URL.Query().Get("m")]}
	c.renderSignin(w, r, http.StatusOK, d)
}

// renderSignin renders the form with a fresh double-submit token. It never
// echoes the secret.
func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, status int, d signinData) {
	tok, err := randomToken()
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	http.SetCookie(w, c.signinCookie(r, tok))
	d.Token = tok
	d.SSO, d.KeySignin = c.OIDC != nil, !c.DisableKeySignin
	c.render(w, r, nil, status, "signin", "Sign in", "", d)
}

// msgSigninKeyOff answers a key sign-in when the operator turned it off.
const msgSigninKeyOff = "Sign-in with an access key is turned off on this server. Sign in with your identity provider."

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	if c.DisableKeySignin {
		c.renderSignin(w, r, http.StatusForbidden, signinData{Error: msgSigninKeyOff})
		return
	}
	if err := c.cop.Check(r); err != nil {
		c.renderSignin(w, r, http.StatusForbidden, signinData{Error: msgSigninToken})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.renderSignin(w, r, http.StatusBadRequest, signinData{Error: msgSigninEmpty})
		return
	}
	d := signinData{Next: safeNext(r.PostForm.Get("next")), AccessKeyID: strings.TrimSpace(r.PostForm.Get("access_key_id"))}
	if !tokensEqual(r.PostForm.Get("csrf"), c.signinToken(r)) {
		d.Error = msgSigninToken
		c.renderSignin(w, r, http.StatusForbidden, d)
		return
	}
	secret := strings.TrimSpace(r.PostForm.Get("secret_access_key"))
	fail := func(status int, msg string) {
		d.Error = msg
		c.renderSignin(w, r, status, d)
	}
	switch {
	case d.AccessKeyID == "" || secret == "":
		fail(http.StatusBadRequest, msgSigninEmpty)
		return
	case !keyformat.ValidID(d.AccessKeyID):
		fail(http.StatusBadRequest, msgSigninBadID)
		return
	}
	ip := c.clientIP(r)
	res := c.Verifier.Verify(&verify.Request{Secret: secret, AccessKeyID: d.AccessKeyID, IP: ip, UserAgent: r.UserAgent(), Principal: true,
		Surface: latchkey.SurfaceConsole, Path: r.URL.Path})
	switch res.Code {
	case latchkey.CodeValid:
	case latchkey.CodeMalformed:
		fail(http.StatusBadRequest, msgSigninMalformed)
		return
	case latchkey.CodeInactive:
		fail(http.StatusUnauthorized, msgSigninInactive)
		return
	case latchkey.CodeExpired:
		fail(http.StatusUnauthorized, msgSigninExpired)
		return
	case latchkey.CodeThrottled:
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins from your address. Try again in %d seconds.",
			int(math.Ceil(res.RetryAfter.Seconds()))))
		return
	default:
		fail(http.StatusUnauthorized, msgSigninNoMatch)
		return
	}
	e := res.Entry
	if e.Role() == "" || e.Role() == latchkey.RoleVerifier {
		fail(http.StatusForbidden, msgSigninVerifier)
		return
	}
	actor := latchkey.Actor{Principal: e.Principal(), Account: e.Account, Role: e.Role(), AccessKeyID: e.ID}
	id, err := c.sessions.create(actor, c.now(), c.IdleTimeout, c.MaxSessionAge)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.Log.Info("console sign-in", "principal", e.Principal(), "account", e.Account, "access_key_id", e.ID, "client_ip", ip.String())
	http.SetCookie(w, c.sessionCookie(r, id))
	http.SetCookie(w, c.signinCookie(r, ""))
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, u *user) error {
	c.sessions.delete(u.id)
	if u.person != nil {
		c.Log.Info("console sign-out", "oidc_subject", u.person.Subject, "email", u.person.Email)
	} else {
		c.Log.Info("console sign-out", "principal", u.actor.Principal, "access_key_id", u.actor.AccessKeyID)
	}
	http.SetCookie(w, c.sessionCookie(r, ""))
	http.Redirect(w, r, Prefix+"/signin?m=signedout", http.StatusSeeOther)
	return nil
}
