package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"golang.org/x/net/http/httpguts"
)

// An upgraded connection (WebSocket) outlives the decision that let it
// through: its key may be deactivated, deleted or expire while it is open.
// The proxy keeps each one under the ID of the key that opened it and
// closes it when the key is no longer valid, by cancelling the call's
// context: httputil.ReverseProxy then closes the upstream connection, the
// tunnel ends, and the caller's connection is closed.
//
// It looks the keys up in the index every upgradeCheck, while any upgraded
// connection is open, rather than being told of changes by the index:
//   - Expiry is a moment, not a change: no change feed announces it, so a
//     hook on the index alone would miss it.
//   - The index's writers (management writes, the PostgreSQL change feed,
//     resyncs) hold its lock while they apply a change; a hook there would
//     run proxy code inside the hot path's critical section, for a feature
//     most installations never use.
//   - A check costs one index lookup per key with an open upgraded
//     connection, four times a second, and nothing at all while none is
//     open. A call that is not an upgrade costs one header lookup.
//
// A key that stops being valid thus loses its upgraded connections within
// upgradeCheck of the index hearing of it: at once on the server that made
// the change, after the change feed's delay on other PostgreSQL replicas.
const upgradeCheck = 250 * time.Millisecond

// upgrades are the open upgraded connections, by key ID.
type upgrades struct {
	v     *verify.Verifier // its Index and its clock
	log   *slog.Logger
	every time.Duration

	mu       sync.Mutex
	byKey    map[string]map[*upgraded]struct{}
	watching bool // the check loop runs
}

// upgraded is one upgraded connection.
type upgraded struct {
	cancel context.CancelCauseFunc
}

// revokedError is the cause of an upgraded connection's end when its key
// is no longer valid; Code says why (INACTIVE, NOT_FOUND, EXPIRED).
type revokedError struct{ Code latchkey.Code }

func (e revokedError) Error() string {
	return "the access key of an upgraded connection is no longer valid: " + string(e.Code)
}

func newUpgrades(v *verify.Verifier, log *slog.Logger) *upgrades {
	return &upgrades{v: v, log: log, every: upgradeCheck, byKey: map[string]map[*upgraded]struct{}{}}
}

// isUpgrade reports whether r asks to switch protocols, as
// httputil.ReverseProxy tells (a Connection header naming Upgrade, and an
// Upgrade header): only then may the upstream's 101 pass.
func isUpgrade(r *http.Request) bool {
	return httpguts.HeaderValuesContainsToken(r.Header["Connection"], "Upgrade") && r.Header.Get("Upgrade") != ""
}

// watch returns r unchanged unless it is an upgrade allowed for key e;
// then it returns r with a context that is cancelled when e is no longer
// valid, and keeps the connection until that context ends (the handler
// returns when the tunnel closes, and net/http then cancels the call's
// context).
func (u *upgrades) watch(r *http.Request, e *verify.Entry) *http.Request {
	if e == nil || !isUpgrade(r) {
		return r
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	c := &upgraded{cancel: cancel}
	u.mu.Lock()
	set := u.byKey[e.ID]
	if set == nil {
		set = map[*upgraded]struct{}{}
		u.byKey[e.ID] = set
	}
	set[c] = struct{}{}
	if !u.watching {
		u.watching = true
		go u.loop()
	}
	u.mu.Unlock()
	context.AfterFunc(ctx, func() { u.forget(e.ID, c) })
	return r.WithContext(ctx)
}

func (u *upgrades) forget(id string, c *upgraded) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if set := u.byKey[id]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(u.byKey, id)
		}
	}
}

// loop checks the keys of the open upgraded connections every u.every,
// and stops when none is open.
func (u *upgrades) loop() {
	t := time.NewTicker(u.every)
	defer t.Stop()
	var ids []string
	for range t.C {
		u.mu.Lock()
		if len(u.byKey) == 0 {
			u.watching = false
			u.mu.Unlock()
			return
		}
		ids = ids[:0]
		for id := range u.byKey {
			ids = append(ids, id)
		}
		u.mu.Unlock()
		now := time.Now()
		if u.v.Now != nil {
			now = u.v.Now()
		}
		for _, id := range ids {
			if code := u.invalid(id, now); code != "" {
				u.close(id, revokedError{Code: code})
			}
		}
	}
}

// invalid returns why key id may no longer be used, or "" if it may.
func (u *upgrades) invalid(id string, now time.Time) latchkey.Code {
	e := u.v.Index.Get(id)
	switch {
	case e == nil:
		return latchkey.CodeNotFound
	case !e.Active:
		return latchkey.CodeInactive
	case e.ExpiresAt != 0 && now.UnixNano() >= e.ExpiresAt: // as verify decides EXPIRED
		return latchkey.CodeExpired
	}
	return ""
}

// close ends every upgraded connection of key id.
func (u *upgrades) close(id string, cause revokedError) {
	u.mu.Lock()
	set := u.byKey[id]
	delete(u.byKey, id)
	u.mu.Unlock()
	for c := range set {
		c.cancel(cause)
	}
	if len(set) > 0 {
		u.log.Info("closed upgraded connections: their access key is no longer valid",
			"access_key_id", id, "code", cause.Code, "connections", len(set))
	}
}

// closeAll ends every upgraded connection, for a server that shuts down.
func (u *upgrades) closeAll() {
	u.mu.Lock()
	all := u.byKey
	u.byKey = map[string]map[*upgraded]struct{}{}
	u.mu.Unlock()
	for _, set := range all {
		for c := range set {
			c.cancel(http.ErrServerClosed)
		}
	}
}
