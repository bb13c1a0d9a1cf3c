package latchkey

import (
	"context"
	"time"
)

// Store is durable storage for latchkey. Implementations: internal/sqlite
// (embedded default) and internal/postgres. Both pass internal/storetest.
//
// Every method returns *Error values for the outcomes callers act on
// (ENOTFOUND, EEXISTS, ECONFLICT) and EUNAVAILABLE when the database cannot
// be reached; anything else is EINTERNAL.
type Store interface {
	// Update runs fn in a read-write transaction and commits it if fn
	// returns nil. The changes are durable when Update returns nil.
	// Transactions are serializable with respect to each other for the
	// rows they lock (see Tx).
	Update(ctx context.Context, fn func(Tx) error) error

	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error

	// ScanAccessKeys calls fn for every access key of every account,
	// complete, with Role set for principal keys. Stopping early: fn
	// returns an error, which ScanAccessKeys returns.
	ScanAccessKeys(ctx context.Context, fn func(*AccessKey) error) error

	// ScanKeyIndex is ScanAccessKeys with only what a verification
	// decision needs set (ID, Account, Application, Principal, Role,
	// SecretDigest, Status, ExpiresAt, Restrictions, ReportOnly,
	// AppRestrictions, KeyType, PublicKey, ExternalID, Metadata, Salt and
	// Imported.HashFormat); the other fields are zero. It is how the
	// in-memory index loads, and it reads a fraction of what
	// ScanAccessKeys reads. It calls fn once for each key, never twice
	// (the index's first load relies on it), as of one point in time.
	ScanKeyIndex(ctx context.Context, fn func(*AccessKey) error) error

	// RecordUsage merges a batch of usage into the keys' stored usage:
	// the newest time wins and counts add up. Keys that no longer exist
	// are skipped.
	RecordUsage(ctx context.Context, batch []UsageUpdate) error

	// UsageSeries returns a key's counts per minute (and, before the
	// retention cutoff, per hour) with At in [from, to), ordered by time.
	UsageSeries(ctx context.Context, accessKeyID string, from, to time.Time) ([]UsageCount, error)

	// CompactUsage rolls per-minute counts older than before up into
	// per-hour counts, and returns how many minute rows it folded.
	CompactUsage(ctx context.Context, before time.Time) (int64, error)

	// Ping returns nil when the store is reachable and writable.
	Ping(ctx context.Context) error

	// Close releases the store's resources.
	Close() error
}

// Tx is one transaction. In an Update transaction the Find* methods lock the
// row they return until commit, so that checks made on it (how many keys an
// application has, whether a key is Active) still hold when the change is
// written.
type Tx interface {
	// CreateAccount returns EEXISTS if the name is taken.
	CreateAccount(ctx context.Context, a *Account) error
	// FindAccount returns ENOTFOUND if there is no such account.
	FindAccount(ctx context.Context, name string) (*Account, error)
	// ListAccounts returns every account ordered by name.
	ListAccounts(ctx context.Context) ([]*Account, error)
	// UpdateAccount writes a's settings (its key prefix) to the account
	// named a.Name. Returns ENOTFOUND if there is no such account.
	UpdateAccount(ctx context.Context, a *Account) error

	// CreateApplication returns EEXISTS if the account already has an
	// application of that name in any case ("Billing" beside "billing"),
	// ENOTFOUND if the account does not exist. Lookups by name are exact.
	CreateApplication(ctx context.Context, app *Application) error
	// FindApplication returns the application with its KeyCount, or
	// ENOTFOUND.
	FindApplication(ctx context.Context, account, name string) (*Application, error)
	// ListApplications returns one page ordered by name, and the token of
	// the next page ("" when this is the last).
	ListApplications(ctx context.Context, f ApplicationFilter) ([]*Application, string, error)
	// UpdateApplication writes the description, restrictions, identity
	// and metadata. Returns ENOTFOUND.
	UpdateApplication(ctx context.Context, app *Application) error
	// DeleteApplication returns ENOTFOUND, or ECONFLICT while the
	// application still owns access keys.
	DeleteApplication(ctx context.Context, account, name string) error

	// CreatePrincipal returns EEXISTS if the name is taken in the account,
	// ENOTFOUND if the account does not exist.
	CreatePrincipal(ctx context.Context, p *Principal) error
	// FindPrincipal returns ENOTFOUND if there is no such principal.
	FindPrincipal(ctx context.Context, account, name string) (*Principal, error)
	// ListPrincipals returns the principals of an account ("" = all) by name.
	ListPrincipals(ctx context.Context, account string) ([]*Principal, error)
	// DeletePrincipal deletes the principal and its access keys.
	// Returns ENOTFOUND.
	DeletePrincipal(ctx context.Context, account, name string) error

	// CreateAccessKey returns EEXISTS if the ID or the secret digest is
	// already in use, ENOTFOUND if the owner does not exist.
	CreateAccessKey(ctx context.Context, k *AccessKey) error
	// FindAccessKey returns the key by ID, with Role set for principal keys,
	// or ENOTFOUND.
	FindAccessKey(ctx context.Context, id string) (*AccessKey, error)
	// ListAccessKeys returns one page ordered by creation time, and the
	// token of the next page.
	ListAccessKeys(ctx context.Context, f AccessKeyFilter) ([]*AccessKey, string, error)
	// UpdateAccessKey writes the key's status, description, expiry and
	// exposure. Returns ENOTFOUND.
	UpdateAccessKey(ctx context.Context, k *AccessKey) error
	// DeleteAccessKey returns ENOTFOUND.
	DeleteAccessKey(ctx context.Context, id string) error

	// AppendAudit stores an event, links it to its account's audit chain
	// and sets its ID, Seq, PrevHash and Hash. It locks the account's
	// chain head until commit, so that each seq is given once.
	AppendAudit(ctx context.Context, e *AuditEvent) error
	// ListAuditChain returns up to limit events of the account with a seq
	// above afterSeq, in chain order.
	ListAuditChain(ctx context.Context, account string, afterSeq int64, limit int) ([]*AuditEvent, error)
	// AuditChainHeads returns the chain head of the account ("" = of every
	// account with events), by account.
	AuditChainHeads(ctx context.Context, account string) ([]*AuditChainHead, error)
	// AddAuditCheckpoint stores a signed checkpoint; one already stored
	// for the same account and seq is kept.
	AddAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error
	// ListAuditCheckpoints returns up to limit checkpoints of the account
	// with a seq above afterSeq, by seq.
	ListAuditCheckpoints(ctx context.Context, account string, afterSeq int64, limit int) ([]*AuditCheckpoint, error)
	// ListAuditEvents returns one page, newest first, and the next token.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, string, error)

	PolicyTx      // policy.go
	WebhookTx     // webhook.go
	RotationTx    // rotation.go
	AuditStreamTx // auditstream.go
	QuotaTx       // quota.go
	IdentityTx    // identity.go
}
