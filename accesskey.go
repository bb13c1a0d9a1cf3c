package latchkey

import (
	"encoding/json"
	"fmt"
	"time"
)

// Status is the state of an access key. Either value can change to the other
// at any time; only an Inactive key may be deleted without force.
type Status string

const (
	StatusActive   Status = "Active"
	StatusInactive Status = "Inactive"
)

// Statuses lists every status, in the order the OpenAPI document does.
func Statuses() []Status { return []Status{StatusActive, StatusInactive} }

// ParseStatus accepts "Active" or "Inactive", exactly: "inactive" and
// "ACTIVE" are refused with EINVALID, as the OpenAPI enum says.
func ParseStatus(s string) (Status, error) { return ParseChoice("status", s, Statuses()) }

// AccessKey is the stored part of an access key: its public ID, the SHA-256
// digest of its secret (never the secret), and what it belongs to. Exactly
// one of Application and Principal is set.
type AccessKey struct {
	ID          string `json:"access_key_id"`
	Account     string `json:"account"`
	Application string `json:"application,omitempty"`
	Principal   string `json:"principal,omitempty"`
	Role        Role   `json:"role,omitempty"` // the principal's role, for principal keys
	Description string `json:"description"`
	// ExternalID is the API provider's own name for the key's customer;
	// Metadata a small JSON object (NormalizeMetadata). Both are returned
	// by every verification and passed upstream.
	ExternalID   string          `json:"external_id,omitempty"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	Status       Status          `json:"status"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	ExpiresAt    *time.Time      `json:"expires_at"`
	LastUsed     *Use            `json:"last_used"`
	LastRejected *Rejection      `json:"last_rejected"`
	UseCount     int64           `json:"use_count"`
	RejectCount  int64           `json:"reject_count"`
	Exposed      *Exposure       `json:"exposed"`
	// Canary marks a key that never authorizes anything: any use of it is
	// answered as an unknown key's and raises a canary.triggered alert.
	// Only those who may change the account see it (Actor.CanSeeCanaries).
	Canary bool `json:"canary,omitempty"`

	// KeyType is bearer (a secret) or signing (PublicKey is set); see
	// signing.go.
	KeyType   KeyType    `json:"key_type"`
	PublicKey *PublicKey `json:"public_key,omitempty"`
	// CertThumbprint, when set, binds the key to a TLS client certificate
	// (RFC 8705 style): the certificate's x5t#S256 (CertThumbprint.String).
	// A call that does not present that certificate is
	// CERTIFICATE_MISMATCH.
	CertThumbprint string `json:"certificate_thumbprint,omitempty"`

	// Restrictions are enforced; ReportOnly restrictions are evaluated on
	// every valid call and what they would deny is recorded, without
	// denying, so that a live key can be tightened safely.
	Restrictions *Restrictions `json:"restrictions,omitempty"`
	ReportOnly   *Restrictions `json:"report_only_restrictions,omitempty"`
	// LastWouldDeny is the last call a report-only restriction would have
	// refused, with the code it would have given.
	LastWouldDeny  *Rejection `json:"last_would_deny"`
	WouldDenyCount int64      `json:"would_deny_count"`

	// Findings are the hygiene policy's findings, computed when the key is
	// read (list and get); absent when there are none or they were not
	// computed.
	Findings []Finding `json:"findings,omitempty"`

	// Quota is the key's budget of calls (quota.go); nil when it has
	// none. The index loads its configuration and generation only.
	Quota *Quota `json:"quota,omitempty"`

	// Roll is the latest server-side roll the key is part of, as old or
	// new key, set when the key is read (list and get); absent when it
	// was never rolled.
	Roll *Rotation `json:"roll,omitempty"`

	// Imported is set on keys brought from another system (import.go).
	Imported *Import `json:"imported,omitempty"`
	// Salt is the per-key salt of an imported sha256-salted key. Not
	// serialized.
	Salt []byte `json:"-"`

	// AppRestrictions are the owning application's restrictions, loaded
	// with the key so the index can enforce both. Not serialized.
	AppRestrictions *Restrictions `json:"-"`
	// AppMetadata is the owning application's metadata and Identity its
	// identity (nil: none), loaded with the key so that a verification
	// returns them and the identity's budget applies. Not serialized.
	AppMetadata json.RawMessage `json:"-"`
	Identity    *KeyIdentity    `json:"-"`

	// SecretDigest is SHA-256(secret), or for an imported key the
	// lookup digest of its hash format (internal/hashformat). It is never
	// serialized.
	SecretDigest [32]byte `json:"-"`
}

// Use is where and when a key was last accepted.
type Use struct {
	At        time.Time `json:"at"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
}

// Rejection is where and when a key was last refused, and why. A rejection
// of an Inactive key is the evidence that something still uses it.
type Rejection struct {
	At        time.Time `json:"at"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	Reason    Code      `json:"reason"`
}

// Exposure records that a key's secret was seen somewhere it should not be.
type Exposure struct {
	At    time.Time `json:"at"`
	Where string    `json:"where"`
}

// Kind says whether a key belongs to an application or an admin principal.
func (k *AccessKey) Kind() string {
	if k.Principal != "" {
		return "principal"
	}
	return "application"
}

// Owner names what the key belongs to, for messages.
func (k *AccessKey) Owner() string {
	if k.Principal != "" {
		return fmt.Sprintf("principal %q", k.Principal)
	}
	return fmt.Sprintf("application %q", k.Application)
}

// NewAccessKey is what a caller gives to create a key.
type NewAccessKey struct {
	Description  string          `json:"description"`
	ExternalID   string          `json:"external_id"`
	Metadata     json.RawMessage `json:"metadata"`
	ExpiresAt    *time.Time      `json:"expires_at"`
	Restrictions *Restrictions   `json:"restrictions"`
	ReportOnly   *Restrictions   `json:"report_only_restrictions"`
	// Canary makes a canary key (AccessKey.Canary). It cannot be changed
	// later, either way.
	Canary bool `json:"canary"`
	// Quota, when given, gives the key a budget of calls (quota.go).
	Quota *Quota `json:"quota"`
	// PublicKey, when given, makes a signing key: the PEM public key of
	// an Ed25519 or ECDSA P-256 key pair (ParsePublicKey). No secret is
	// made and none is returned.
	PublicKey string `json:"public_key,omitempty"`
	// CertificateThumbprint binds the key to a TLS client certificate
	// (ParseCertThumbprint); Certificate does the same from the PEM
	// certificate itself. Give one at most.
	CertificateThumbprint string `json:"certificate_thumbprint,omitempty"`
	Certificate           string `json:"certificate,omitempty"`
}

// AccessKeyUpdate changes a key; nil fields are left alone.
type AccessKeyUpdate struct {
	Status      *Status `json:"status"`
	Description *string `json:"description"`
	// ExternalID "" removes the external ID.
	ExternalID *string `json:"external_id"`
	// Metadata replaces the whole document; {} or null removes it.
	Metadata     json.RawMessage `json:"metadata"`
	ExpiresAt    *time.Time      `json:"expires_at"`
	Restrictions *Restrictions   `json:"restrictions"`
	ReportOnly   *Restrictions   `json:"report_only_restrictions"`
	// Quota replaces the key's quota (its budget is set, and replicas'
	// leases are dropped); RemoveQuota removes it.
	Quota       *Quota `json:"quota"`
	RemoveQuota bool   `json:"remove_quota"`
	// ClearExpiry removes the expiry.
	ClearExpiry bool `json:"clear_expiry"`
	// EnforceReportOnly moves the report-only restrictions into the
	// enforced ones (replacing them) and clears the report-only set.
	EnforceReportOnly bool `json:"enforce_report_only"`
	// CertificateThumbprint binds the key to a TLS client certificate
	// (ParseCertThumbprint), "" unbinds it; Certificate binds it from the
	// PEM certificate. Give one at most.
	CertificateThumbprint *string `json:"certificate_thumbprint"`
	Certificate           *string `json:"certificate"`
}

// KeyKinds lists what a key may belong to, for AccessKeyFilter.Kind.
func KeyKinds() []string { return []string{"application", "principal"} }

// AccessKeyFilter selects keys in a list. Empty fields match everything.
type AccessKeyFilter struct {
	Account     string // "" means every account (operators only)
	Application string
	Principal   string
	Kind        string // "application", "principal" or "" for both
	ExternalID  string // keys with exactly this external ID
	After       string // page token from a previous page
	Limit       int
	// NoCanaries leaves canary keys out, for those who may not see them.
	NoCanaries bool
	// Policy, when set, selects only the keys a policy round must read
	// (see PolicyCandidates).
	Policy *PolicyCandidates
}

// CanaryUse is one presentation of a canary key, on any surface: what its
// canary.triggered alert reports. It never holds the secret.
type CanaryUse struct {
	AccessKeyID string    `json:"access_key_id"`
	Account     string    `json:"account"`
	Application string    `json:"application,omitempty"`
	At          time.Time `json:"at"`
	IP          string    `json:"ip"`
	UserAgent   string    `json:"user_agent"`
	// Surface is where the key was presented: verify, authorize, proxy,
	// ext_authz, management or console.
	Surface string `json:"surface"`
	// Path is the path of the call the key came with, when known.
	Path string `json:"path"`
}

// Canary surfaces.
const (
	SurfaceVerify     = "verify"
	SurfaceAuthorize  = "authorize"
	SurfaceProxy      = "proxy"
	SurfaceExtAuthz   = "ext_authz"
	SurfaceManagement = "management"
	SurfaceConsole    = "console"
)

// UsageUpdate is a batch of usage observed in memory for one key, written to
// the store at most about once a second. The newest time wins; counts add up.
type UsageUpdate struct {
	AccessKeyID   string
	LastUsed      *Use
	LastRejected  *Rejection
	Uses          int64
	Rejections    int64
	LastWouldDeny *Rejection
	WouldDeny     int64
	// Counts per minute and decision code, for usage charts.
	Minutes []UsageCount
}

// UsageCount is how many calls with one decision code a key saw in one
// period (a minute, or an hour once rolled up).
type UsageCount struct {
	At    time.Time `json:"at"` // start of the period
	Code  Code      `json:"code"`
	Count int64     `json:"count"`
}

// MaxDescriptionLen bounds descriptions and other free text.
const MaxDescriptionLen = 1024

// equalFold reports whether a and b are equal under ASCII case folding.
// Equal bytes are taken without folding: hosts and schemes mostly arrive
// in lower case already, as the patterns they are matched against are
// kept.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
