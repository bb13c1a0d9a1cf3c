package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// Session defaults.
const (
	DefaultIdleTimeout   = 30 * time.Minute
	DefaultMaxSessionAge = 12 * time.Hour
	// MaxSessions bounds memory; past it, the sessions idle the longest are
	// ended to make room (every session needs a valid admin key, so only
	// admins can fill the table).
	MaxSessions = 10000
	// maxNonces bounds the one-time form tokens a session keeps.
	maxNonces = 32
)

// Cookie names. Over TLS the session cookie carries the __Host- prefix,
// which browsers accept only with Secure, Path=/ and no Domain: another
// host or a plain-HTTP page cannot set or shadow it.
const (
	cookieSession       = "latchkey_session"
	cookieSessionSecure = "__Host-latchkey_session"
	cookieSignin        = "latchkey_signin"
	cookieSigninSecure  = "__Host-latchkey_signin"
)

// session is one signed-in browser. It holds who signed in, never the
// secret they signed in with.
type session struct {
	actor   latchkey.Actor // Principal, Account, Role, AccessKeyID; SourceIP and UserAgent come from each request
	csrf    string
	account string // the account an operator is looking at
	created time.Time
	seen    time.Time
	flash   []flash
	nonces  map[string]time.Time // one-time form tokens (key creation)
	person  *person              // set when a person signed in with OIDC, nil for an access key
}

// flash is a message shown once, on the next page.
type flash struct {
	Error   bool
	Message string
}

// sessionStore keeps sessions in memory, keyed by the SHA-256 of the
// session ID, so that neither a map lookup's timing nor a heap dump gives
// out a usable cookie value.
type sessionStore struct {
	mu      sync.Mutex
	m       map[[32]byte]*session
	created int // sign-ins since the last sweep
}

func newSessionStore() *sessionStore {
	return &sessionStore{m: map[[32]byte]*session{}}
}

// randomToken returns 32 random bytes, base64url-encoded. An error from the
// random source is returned, never swallowed.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", latchkey.Internal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// create starts a session for actor and returns its ID.
func (st *sessionStore) create(actor latchkey.Actor, now time.Time, idle, maxAge time.Duration) (string, error) {
	return st.createPerson(actor, nil, now, idle, maxAge)
}

// createPerson starts a session for actor, who is p when p is set (OIDC
// sign-in), and returns its ID.
func (st *sessionStore) createPerson(actor latchkey.Actor, p *person, now time.Time, idle, maxAge time.Duration) (string, error) {
	id, err := randomToken()
	if err != nil {
		return "", err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", err
	}
	actor.SourceIP, actor.UserAgent = "", ""
	st.mu.Lock()
	defer st.mu.Unlock()
	// Expired sessions are refused when used; they are swept from memory
	// every so often, and before the table is full.
	if st.created++; st.created >= 256 || len(st.m) >= MaxSessions {
		st.sweepLocked(now, idle, maxAge)
		st.created = 0
	}
	if len(st.m) >= MaxSessions {
		st.evictIdlestLocked()
	}
	st.m[sessionKey(id)] = &session{actor: actor, csrf: csrf, account: actor.Account, created: now, seen: now, person: p}
	return id, nil
}

func (st *sessionStore) sweepLocked(now time.Time, idle, maxAge time.Duration) {
	for k, s := range st.m {
		if s.expired(now, idle, maxAge) {
			delete(st.m, k)
		}
	}
}

func (st *sessionStore) evictIdlestLocked() {
	var (
		oldest [32]byte
		seen   time.Time
		found  bool
	)
	for k, s := range st.m {
		if !found || s.seen.Before(seen) {
			oldest, seen, found = k, s.seen, true
		}
	}
	delete(st.m, oldest)
}

func (s *session) expired(now time.Time, idle, maxAge time.Duration) bool {
	return now.Sub(s.seen) >= idle || now.Sub(s.created) >= maxAge
}

// sessionView is a copy of what a request needs from its session.
type sessionView struct {
	id      string
	actor   latchkey.Actor
	csrf    string
	account string
	person  *person
}

// get returns the live session with this ID and, when touch is set, marks
// it seen (automatic requests, such as chart updates, do not: a tab left
// open must still idle out). It ends and reports expired sessions.
func (st *sessionStore) get(id string, now time.Time, idle, maxAge time.Duration, touch bool) (v sessionView, ok, expired bool) {
	if id == "" {
		return v, false, false
	}
	k := sessionKey(id)
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.m[k]
	if s == nil {
		return v, false, false
	}
	if s.expired(now, idle, maxAge) {
		delete(st.m, k)
		return v, false, true
	}
	if touch {
		s.seen = now
	}
	return sessionView{id: id, actor: s.actor, csrf: s.csrf, account: s.account, person: s.person}, true, false
}

// update runs fn on the session, if it still exists.
func (st *sessionStore) update(id string, fn func(*session)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s := st.m[sessionKey(id)]; s != nil {
		fn(s)
	}
}

func (st *sessionStore) delete(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, sessionKey(id))
}

// endPersons ends the OIDC sessions whose person match accepts and
// returns how many it ended.
func (st *sessionStore) endPersons(match func(*person) bool) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for k, s := range st.m {
		if s.person != nil && match(s.person) {
			delete(st.m, k)
			n++
		}
	}
	return n
}

func (st *sessionStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.m)
}

func (st *sessionStore) addFlash(id string, f flash) {
	st.update(id, func(s *session) {
		if len(s.flash) < 8 {
			s.flash = append(s.flash, f)
		}
	})
}

func (st *sessionStore) takeFlash(id string) []flash {
	var out []flash
	st.update(id, func(s *session) { out, s.flash = s.flash, nil })
	return out
}

// newNonce issues a one-time token for a form whose double submission
// would do harm (creating a key: a reload must not make a second one).
func (st *sessionStore) newNonce(id string, now time.Time) (string, error) {
	n, err := randomToken()
	if err != nil {
		return "", err
	}
	st.update(id, func(s *session) {
		if s.nonces == nil {
			s.nonces = map[string]time.Time{}
		}
		for len(s.nonces) >= maxNonces {
			var oldest string
			var at time.Time
			for k, t := range s.nonces {
				if oldest == "" || t.Before(at) {
					oldest, at = k, t
				}
			}
			delete(s.nonces, oldest)
		}
		s.nonces[n] = now
	})
	return n, nil
}

// useNonce consumes a one-time token and reports whether it was valid.
func (st *sessionStore) useNonce(id, n string) bool {
	ok := false
	st.update(id, func(s *session) {
		if _, found := s.nonces[n]; found && n != "" {
			delete(s.nonces, n)
			ok = true
		}
	})
	return ok
}

// tokensEqual compares two tokens in constant time.
func tokensEqual(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// secure reports whether the browser reached the console over TLS: directly,
// or through a trusted proxy that says so in X-Forwarded-Proto.
func (c *Console) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if len(c.TrustedProxies) == 0 {
		return false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	trusted := false
	for _, p := range c.TrustedProxies {
		if p.Contains(peer.Addr().Unmap()) {
			trusted = true
			break
		}
	}
	if !trusted {
		return false
	}
	proto := r.Header.Values("X-Forwarded-Proto")
	if len(proto) == 0 {
		return false
	}
	// the nearest proxy appends last
	last := proto[len(proto)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

// sessionCookie returns the cookie that carries a session ID (an empty
// value and MaxAge -1 clear it).
func (c *Console) sessionCookie(r *http.Request, value string) *http.Cookie {
	ck := &http.Cookie{Name: cookieSession, Value: value, Path: "/console", HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if c.secure(r) {
		ck.Name, ck.Path, ck.Secure = cookieSessionSecure, "/", true
	}
	if value == "" {
		ck.MaxAge = -1
	}
	return ck
}

// signinCookie carries the token that protects the sign-in form itself
// (double submit), before there is a session.
func (c *Console) signinCookie(r *http.Request, value string) *http.Cookie {
	ck := &http.Cookie{Name: cookieSignin, Value: value, Path: "/console/signin", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 3600}
	if c.secure(r) {
		ck.Name, ck.Path, ck.Secure = cookieSigninSecure, "/", true
	}
	if value == "" {
		ck.MaxAge = -1
	}
	return ck
}

func cookieValue(r *http.Request, name string) string {
	ck, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return ck.Value
}

func (c *Console) sessionID(r *http.Request) string {
	if c.secure(r) {
		return cookieValue(r, cookieSessionSecure)
	}
	return cookieValue(r, cookieSession)
}

func (c *Console) signinToken(r *http.Request) string {
	if c.secure(r) {
		return cookieValue(r, cookieSigninSecure)
	}
	return cookieValue(r, cookieSignin)
}
