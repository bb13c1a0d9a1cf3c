// Package manage implements latchkey's management operations on top of a
// latchkey.Store: who may do what (roles and accounts), the rules of the key
// lifecycle (two keys per application, delete only when Inactive), the audit
// event written in the same transaction as every change, and keeping the
// verification index current after each commit.
//
// Every surface that changes state (HTTP API, console, leak reports) goes
// through a Service, so the rules and the audit are the same everywhere.
package manage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// Service performs management operations for an authenticated actor.
type Service struct {
	Store latchkey.Store
	Index *verify.Index
	Log   *slog.Logger

	// MaxKeysPerApplication bounds how many keys an application (or an
	// admin principal) may own. Rotation needs two.
	MaxKeysPerApplication int

	// Now returns the current time; tests inject a clock.
	Now func() time.Time

	// NewID and NewSecret make key material; tests may inject failures.
	NewID     func() (string, error)
	NewSecret func() (string, error)

	// DefaultPolicy is the hygiene policy of accounts that have not set
	// their own (policy.go).
	DefaultPolicy latchkey.Policy
	// Destinations is the webhook destination policy that URLs are
	// checked against when they are set; nil applies the default policy
	// with the system's resolver. Serve gives the Dispatcher the same one.
	Destinations *Destinations
	// Wake, when set, is called after every committed change, so that a
	// webhook dispatcher sends new events at once instead of at its next
	// poll. It must not block.
	Wake func()
	// QuotaHolds says what replicas hold leased from a key's quota and
	// have not spent (verify.Verifier.QuotaHeld: the shared store's
	// units, or this replica's); nil reads this replica's from Index.
	QuotaHolds QuotaHolder

	// writeMu orders commits with their index updates, so that two changes
	// to the same key reach the index in commit order.
	writeMu sync.Mutex
}

// New returns a service over store and ix with default settings.
func New(store latchkey.Store, ix *verify.Index, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		Store:                 store,
		Index:                 ix,
		Log:                   log,
		MaxKeysPerApplication: latchkey.DefaultMaxKeysPerApplication,
		Now:                   latchkey.Now,
		NewID:                 keyformat.NewID,
		NewSecret:             keyformat.NewSecret,
		DefaultPolicy:         latchkey.DefaultPolicy(),
	}
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// update runs fn in a write transaction and then apply (if any) to the
// index, under writeMu.
func (s *Service) update(ctx context.Context, fn func(latchkey.Tx) error, apply func()) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.Store.Update(ctx, fn); err != nil {
		return err
	}
	if apply != nil {
		apply()
	}
	if s.Wake != nil {
		s.Wake()
	}
	return nil
}

// ResolveAccount returns the account an actor acts on when it names
// requested ("" = its own, or the default for operators). Naming an account
// the actor may not read gives ENOTFOUND, as if it did not exist.
func ResolveAccount(a latchkey.Actor, requested string) (string, error) {
	if requested == "" {
		if a.Role == latchkey.RoleOperator {
			return latchkey.DefaultAccount, nil
		}
		return a.Account, nil
	}
	if !a.CanRead(requested) {
		return "", latchkey.Errorf(latchkey.ENOTFOUND, "account %q not found", requested)
	}
	return requested, nil
}

func requireWrite(a latchkey.Actor, account string) error {
	if !a.CanRead(account) {
		return latchkey.Errorf(latchkey.ENOTFOUND, "account %q not found", account)
	}
	if !a.CanWrite(account) {
		return latchkey.Errorf(latchkey.EFORBIDDEN, "role %s may not change anything", a.Role)
	}
	return nil
}

func requireRead(a latchkey.Actor, account string) error {
	if !a.CanRead(account) {
		return latchkey.Errorf(latchkey.ENOTFOUND, "account %q not found", account)
	}
	return nil
}

// audit builds an event for actor with the public JSON of before and after.
func (s *Service) audit(a latchkey.Actor, at time.Time, account, action, targetType, target, app string, before, after any) (*latchkey.AuditEvent, error) {
	e := &latchkey.AuditEvent{
		Time: at, Account: account, Actor: a.Principal, ActorKeyID: a.AccessKeyID,
		SourceIP: a.SourceIP, UserAgent: latchkey.CleanText(a.UserAgent, 256), Action: action,
		TargetType: targetType, Target: target, Application: app,
	}
	var err error
	if e.Before, err = marshalOrNil(before); err != nil {
		return nil, err
	}
	if e.After, err = marshalOrNil(after); err != nil {
		return nil, err
	}
	return e, nil
}

func marshalOrNil(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	if k, ok := v.(*latchkey.AccessKey); ok {
		if k == nil {
			return nil, nil
		}
		v = auditKey(k)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, latchkey.Internal(fmt.Errorf("marshal audit: %w", err))
	}
	return b, nil
}

// auditKey is what the audit records of a key: its identity and settings,
// not its usage counters (those change without an audited action).
func auditKey(k *latchkey.AccessKey) any {
	return struct {
		ID          string                 `json:"access_key_id"`
		Account     string                 `json:"account"`
		Application string                 `json:"application,omitempty"`
		Principal   string                 `json:"principal,omitempty"`
		Description string                 `json:"description"`
		Status      latchkey.Status        `json:"status"`
		ExpiresAt   *time.Time             `json:"expires_at,omitempty"`
		Exposed     *latchkey.Exposure     `json:"exposed,omitempty"`
		Restr       *latchkey.Restrictions `json:"restrictions,omitempty"`
		ReportOnly  *latchkey.Restrictions `json:"report_only_restrictions,omitempty"`
		Cert        string                 `json:"certificate_thumbprint,omitempty"`
	}{k.ID, k.Account, k.Application, k.Principal, k.Description, k.Status, k.ExpiresAt, k.Exposed, k.Restrictions, k.ReportOnly,
		k.CertThumbprint}
}

// newKeyMaterial returns a fresh ID and secret. An error from the random
// source is returned, never swallowed.
func (s *Service) newKeyMaterial() (id, secret string, err error) {
	if id, err = s.NewID(); err != nil {
		return "", "", latchkey.Internal(err)
	}
	if secret, err = s.NewSecret(); err != nil {
		return "", "", latchkey.Internal(err)
	}
	return id, secret, nil
}

// retryOnCollision retries fn a few times when it reports EEXISTS for a new
// key's ID or digest (practically impossible, but a unique index decides).
func retryOnCollision(fn func() error) error {
	var err error
	for range 3 {
		err = fn()
		var le *latchkey.Error
		if !errors.As(err, &le) || le.Code != latchkey.EEXISTS {
			return err
		}
	}
	return err
}
