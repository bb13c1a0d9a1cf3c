package latchkey

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Identity is one customer of the API provider: it groups applications,
// and so their keys, so that a rate limit and a quota set on it hold
// across all of them (a customer cannot escape a limit by making more
// keys). An application belongs to at most one identity.
type Identity struct {
	ID      string `json:"id"`
	Account string `json:"account"`
	Name    string `json:"name"`
	// ExternalID is the provider's own name for the customer; Metadata a
	// small JSON object (NormalizeMetadata). Both are returned by every
	// verification of the identity's keys.
	ExternalID string          `json:"external_id,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	// RateLimit is shared by every key of the identity; a call must
	// satisfy it besides the key's own (or its application's) limit.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// Quota is shared by every key of the identity (owner
	// QuotaOwner{QuotaOwnerIdentity, ID}); a call must be paid by it and
	// by the key's own quota, if any. Set through the quota API.
	Quota     *Quota    `json:"quota,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ApplicationCount is how many applications belong to it (read only).
	ApplicationCount int `json:"application_count"`
}

// QuotaOwnerIdentity is the QuotaOwner kind of an identity's quota.
const QuotaOwnerIdentity = "identity"

// IdentityPrefix starts every identity ID: "idn_" and 16 lower-case
// base32 characters.
const IdentityPrefix = "idn_"

// ValidIdentityID reports whether id looks like an identity ID, so that
// other strings are not found without a query.
func ValidIdentityID(id string) bool {
	rest, ok := strings.CutPrefix(id, IdentityPrefix)
	if !ok || len(rest) != 16 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// ValidateIdentityRateLimit checks an identity's rate limit as an
// application's restriction would be checked, and normalises it.
func ValidateIdentityRateLimit(rl *RateLimit) error {
	if rl == nil {
		return nil
	}
	return (&Restrictions{RateLimit: rl}).Validate()
}

// NewIdentity is what makes an identity.
type NewIdentity struct {
	Name       string          `json:"name"`
	ExternalID string          `json:"external_id,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	RateLimit  *RateLimit      `json:"rate_limit,omitempty"`
	Quota      *Quota          `json:"quota,omitempty"`
}

// IdentityUpdate changes an identity; nil fields are left alone.
type IdentityUpdate struct {
	Name *string `json:"name"`
	// ExternalID "" removes the external ID.
	ExternalID *string `json:"external_id"`
	// Metadata replaces the whole document; {} or null removes it.
	Metadata json.RawMessage `json:"metadata"`
	// RateLimit replaces the shared rate limit; RemoveRateLimit removes it.
	RateLimit       *RateLimit `json:"rate_limit"`
	RemoveRateLimit bool       `json:"remove_rate_limit"`
	// Quota replaces the shared quota (its budget is set, and replicas'
	// leases are dropped); RemoveQuota removes it.
	Quota       *Quota `json:"quota"`
	RemoveQuota bool   `json:"remove_quota"`
}

// NewApplication is what makes an application.
type NewApplication struct {
	Name         string        `json:"name"`
	Description  string        `json:"description"`
	Restrictions *Restrictions `json:"restrictions,omitempty"`
	// Owner is the consumer organisation whose people manage the
	// application's keys in the portal ("" for none).
	Owner      string          `json:"owner,omitempty"`
	IdentityID string          `json:"identity_id,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

// ApplicationUpdate changes an application; nil fields are left alone.
type ApplicationUpdate struct {
	Description  *string       `json:"description"`
	Restrictions *Restrictions `json:"restrictions"`
	// Owner: "" removes the owner (the portal then shows the application
	// to nobody).
	Owner *string `json:"owner"`
	// IdentityID moves the application to that identity; "" takes it out
	// of its identity.
	IdentityID *string `json:"identity_id"`
	// Metadata replaces the whole document; {} or null removes it.
	Metadata json.RawMessage `json:"metadata"`
}

// KeyIdentity is what the index needs of a key's identity: loaded with
// the key (ScanKeyIndex, FindAccessKey), not serialized with it.
type KeyIdentity struct {
	ID         string
	Account    string
	ExternalID string
	Metadata   json.RawMessage
	RateLimit  *RateLimit
	// Quota is the identity's quota configuration and generation; nil
	// when it has none.
	Quota *Quota
}

// IdentityFilter selects identities in a list.
type IdentityFilter struct {
	Account    string
	ExternalID string // "" = any
	After      string
	Limit      int
}

// IdentityTx keeps identities, in a transaction.
type IdentityTx interface {
	// CreateIdentity returns EEXISTS if the account already has an
	// identity of that name or external ID, ENOTFOUND if the account
	// does not exist.
	CreateIdentity(ctx context.Context, id *Identity) error
	// FindIdentity returns the identity with its ApplicationCount and
	// Quota (brought to now), or ENOTFOUND. In an Update transaction the
	// row is locked until commit.
	FindIdentity(ctx context.Context, account, id string, now time.Time) (*Identity, error)
	// ListIdentities returns one page ordered by ID, and the token of
	// the next page ("" when this is the last).
	ListIdentities(ctx context.Context, f IdentityFilter) ([]*Identity, string, error)
	// UpdateIdentity writes name, external ID, metadata and rate limit.
	// Returns ENOTFOUND, or EEXISTS when the name or external ID is taken.
	UpdateIdentity(ctx context.Context, id *Identity) error
	// DeleteIdentity removes the identity and its quota. Returns
	// ENOTFOUND, or ECONFLICT while applications still belong to it.
	DeleteIdentity(ctx context.Context, account, id string) error
	// IdentityKeyIDs returns the IDs of every key of every application of
	// the identity, for an index reload.
	IdentityKeyIDs(ctx context.Context, account, id string) ([]string, error)
	// FindKeyIdentity returns what a key's index entry needs of the
	// identity (nil for "" or an identity that no longer exists).
	FindKeyIdentity(ctx context.Context, id string) (*KeyIdentity, error)
}
