// Package verify is latchkey's hot path: an in-memory index from secret
// digest to key record, the decision for a presented credential, and the
// usage recorder that batches last-used times and counts to the store.
//
// A verification never touches the database. The index is kept current by
// the store's change feed: management writes apply their changes after
// commit (in-process), and the PostgreSQL adapter adds LISTEN/NOTIFY and a
// periodic resync.
package verify

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// Entry is the index's record of one access key: what a decision needs and
// nothing else. Entries are immutable once published; a change replaces the
// entry. Usage lives in a cell that survives replacement.
//
// An entry is kept small, because the index holds one per key (a million
// keys must fit in a few hundred megabytes): what most keys lack
// (restrictions, a rate limit, usage since the last flush) hangs off a
// pointer that stays nil until needed.
type Entry struct {
	ID        string
	Account   string
	ExpiresAt int64 // Unix nanoseconds; 0 = never

	// usage is made on the key's first decision (Index.cell), so that
	// keys nobody uses cost no cell.
	usage atomic.Pointer[usageCell]
	rules *rules // nil: no restriction, no scope, no rate limit

	// owner is the application's name, or the principal's when kind is
	// not kindApplication. One field for both, and the role as a byte,
	// keep the entry small: 112 bytes (a size class) with the 32-byte
	// certificate thumbprint, 80 without it.
	owner  string
	kind   uint8
	Active bool
	// Canary marks a canary key: Verify answers it as NOT_FOUND and tells
	// the Verifier's Canary hook.
	Canary bool
	// signing marks a signing key, which no secret may use (its digest
	// is latchkey.SigningDigest, which no secret has; this is the second
	// lock on that door). Its public key is in rules.
	signing bool
	// format is the key's hash format (formatNative for latchkey's own
	// keys); see imported.go.
	format uint8
	// bound marks a key bound to a TLS client certificate whose
	// thumbprint is cert (latchkey.AccessKey.CertThumbprint): held here,
	// so that the check costs an unbound key one byte's test. certBad
	// marks a stored thumbprint that does not parse: no certificate
	// matches it.
	bound, certBad bool
	cert           latchkey.CertThumbprint
}

// Entry.kind: an application key, or a principal key and its role.
const (
	kindApplication uint8 = iota
	kindPrincipal         // a principal key whose role is not one of the below
	kindOperator
	kindAdmin
	kindViewer
	kindVerifier
)

var kindRoles = [...]latchkey.Role{kindOperator: latchkey.RoleOperator, kindAdmin: latchkey.RoleAdmin,
	kindViewer: latchkey.RoleViewer, kindVerifier: latchkey.RoleVerifier}

// keyKind is the kind of an entry for k.
func keyKind(k *latchkey.AccessKey) uint8 {
	if k.Principal == "" {
		return kindApplication
	}
	for i, r := range kindRoles {
		if r != "" && r == k.Role {
			return uint8(i)
		}
	}
	return kindPrincipal
}

// Application is the name of the key's application; "" for a principal key.
func (e *Entry) Application() string {
	if e.kind != kindApplication {
		return ""
	}
	return e.owner
}

// Principal is the name of the key's admin principal; "" for an
// application key.
func (e *Entry) Principal() string {
	if e.kind == kindApplication {
		return ""
	}
	return e.owner
}

// Role is the role of the key's principal; "" for an application key.
func (e *Entry) Role() latchkey.Role { return kindRoles[e.kind] }

// rules are an entry's compiled restrictions.
type rules struct {
	app, key, report *policy  // nil restricts nothing
	limit            *limiter // the key's rate limit (its own, else the application's)
	scopes           string   // the key's granted scopes, space-separated ("" = any)
	reportLimit      *limiter
	reportRateKey    string // the report-only limit's name in a RateStore
	about            *about // nil: no external ID, no metadata
	pub              *latchkey.PublicKey
	salt             string     // an imported sha256-salted key's salt
	quota            *quotaCell // nil: no quota
	identity         *identity  // nil: the key's application is in no identity
	appMetadata      json.RawMessage
}

// identity is a key's identity as its entry holds it: what a verification
// returns, and the rate limit and quota shared by every key of the
// identity on this replica (one limiter and one quota cell per identity,
// kept in Index.identities).
type identity struct {
	id         string
	externalID string
	metadata   json.RawMessage
	limit      *limiter   // nil: no shared rate limit
	rateKey    string     // the shared limit's name in a RateStore
	quota      *quotaCell // nil: no shared quota
}

// sharedBudget is what the keys of one identity share on this replica.
type sharedBudget struct {
	limit *limiter
	quota *quotaCell
}

// compileIdentity returns the entry's view of ki, with the identity's
// shared limiter and quota cell: kept while their configuration (and
// the quota's generation) is the same, so that reloading the identity's
// keys one by one hands out no fresh burst and drops no lease. The
// caller holds ix.mu.
func (ix *Index) compileIdentity(ki *latchkey.KeyIdentity) *identity {
	if ki == nil {
		return nil
	}
	sb := ix.identities[ki.ID]
	if sb == nil {
		sb = &sharedBudget{}
		ix.identities[ki.ID] = sb
	}
	if ki.RateLimit == nil {
		sb.limit = nil
	} else if sb.limit == nil || sb.limit.cfg != *ki.RateLimit {
		sb.limit = newLimiter(ki.RateLimit)
	}
	owner := latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerIdentity, ID: ki.ID}
	if !sb.quota.sameQuota(ki.Quota) {
		sb.quota = newQuotaCell(owner, ki.Quota)
	}
	return &identity{id: ki.ID, externalID: ki.ExternalID, metadata: ki.Metadata, limit: sb.limit,
		rateKey: sharedQuotaID(owner), quota: sb.quota}
}

// IdentityID is the ID of the identity of the key's application; "" when
// it has none.
func (e *Entry) IdentityID() string {
	if e.rules == nil || e.rules.identity == nil {
		return ""
	}
	return e.rules.identity.id
}

// IdentityExternalID is the external ID of the key's identity; "" when it
// has none.
func (e *Entry) IdentityExternalID() string {
	if e.rules == nil || e.rules.identity == nil {
		return ""
	}
	return e.rules.identity.externalID
}

// IdentityMetadata is the metadata of the key's identity as compact JSON;
// nil when it has none. The caller must not change it.
func (e *Entry) IdentityMetadata() json.RawMessage {
	if e.rules == nil || e.rules.identity == nil {
		return nil
	}
	return e.rules.identity.metadata
}

// ApplicationMetadata is the metadata of the key's application as compact
// JSON; nil when it has none. The caller must not change it.
func (e *Entry) ApplicationMetadata() json.RawMessage {
	if e.rules == nil {
		return nil
	}
	return e.rules.appMetadata
}

// about is what a verification tells the caller about a key's customer,
// ready to send: the external ID, the metadata, and the metadata in its
// header encoding (latchkey.MetadataHeader), encoded once per change of
// the key rather than once per call.
type about struct {
	externalID     string
	metadata       json.RawMessage
	metadataHeader string
}

// ExternalID is the key's external ID; "" when it has none.
func (e *Entry) ExternalID() string {
	if e.rules == nil || e.rules.about == nil {
		return ""
	}
	return e.rules.about.externalID
}

// Metadata is the key's metadata as compact JSON; nil when it has none.
// The caller must not change it.
func (e *Entry) Metadata() json.RawMessage {
	if e.rules == nil || e.rules.about == nil {
		return nil
	}
	return e.rules.about.metadata
}

// MetadataHeader is the key's metadata in its header encoding
// (latchkey.MetadataHeader); "" when it has none.
func (e *Entry) MetadataHeader() string {
	if e.rules == nil || e.rules.about == nil {
		return ""
	}
	return e.rules.about.metadataHeader
}

// Scopes returns the scopes the key may use, space-separated; "" means any.
func (e *Entry) Scopes() string {
	if e.rules == nil {
		return ""
	}
	return e.rules.scopes
}

// Restricted reports whether any enforced restriction applies to the key.
func (e *Entry) Restricted() bool {
	return e.rules != nil && (e.rules.app != nil || e.rules.key != nil)
}

// IsPrincipal reports whether the key belongs to an admin principal.
func (e *Entry) IsPrincipal() bool { return e.kind != kindApplication }

const shardCount = 64

type shard struct {
	mu       sync.RWMutex
	byDigest map[keyformat.Digest]*Entry
}

// Index maps secret digests to entries. It is safe for concurrent use.
type Index struct {
	shards [shardCount]shard

	gate sync.RWMutex // see ReadUsage

	mu        sync.Mutex // guards byID, the intern table, resync and reload state, and making usage cells
	byID      map[string]keyformat.Digest
	strs      map[string]string // interned account and principal names
	resyncing bool
	touched   map[string]struct{}
	// reloading holds the keys a Reload is loading, and whether a Put or
	// Delete changed them meanwhile.
	reloading map[string]bool
	// identities holds what the keys of each identity share, by
	// identity ID. An identity's budget stays here after its last key is
	// gone: a few words each, and an identity seldom goes.
	identities map[string]*sharedBudget

	// formats counts the keys of each hash format (under mu); inUse has
	// bit f set while formats[f] > 0, read without a lock by Verify.
	formats [formatCount]int
	inUse   atomic.Uint32
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{byID: map[string]keyformat.Digest{}, strs: map[string]string{}, reloading: map[string]bool{},
		identities: map[string]*sharedBudget{}}
	for i := range ix.shards {
		ix.shards[i].byDigest = map[keyformat.Digest]*Entry{}
	}
	return ix
}

func (ix *Index) shard(d *keyformat.Digest) *shard { return &ix.shards[d[0]%shardCount] }

// Lookup returns the entry for a digest, or nil.
func (ix *Index) Lookup(d *keyformat.Digest) *Entry {
	s := ix.shard(d)
	s.mu.RLock()
	e := s.byDigest[*d]
	s.mu.RUnlock()
	return e
}

// Len returns the number of keys in the index.
func (ix *Index) Len() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.byID)
}

func (ix *Index) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := ix.strs[s]; ok {
		return v
	}
	ix.strs[s] = s
	return s
}

// Put adds or replaces the entry for k.
func (ix *Index) Put(k *latchkey.AccessKey) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.resyncing {
		ix.touched[k.ID] = struct{}{}
	}
	if _, ok := ix.reloading[k.ID]; ok {
		ix.reloading[k.ID] = true
	}
	ix.putLocked(k)
}

func (ix *Index) putLocked(k *latchkey.AccessKey) {
	e := &Entry{
		ID:      k.ID,
		Account: ix.intern(k.Account),
		// Application names are not interned: an application has at most
		// a few keys, and an entry in the intern table costs more than
		// the copies it would save.
		owner:  k.Application,
		kind:   keyKind(k),
		Active: k.Status == latchkey.StatusActive,
		Canary: k.Canary,
		format: formatOf(k),
	}
	if e.kind != kindApplication {
		e.owner = ix.intern(k.Principal)
	}
	if k.ExpiresAt != nil {
		e.ExpiresAt = k.ExpiresAt.UnixNano()
	}
	r := &rules{app: compile(k.AppRestrictions), key: compile(k.Restrictions), report: compile(k.ReportOnly), pub: k.PublicKey,
		salt: string(k.Salt)}
	e.signing = k.PublicKey != nil
	if k.CertThumbprint != "" {
		// A stored thumbprint that does not parse refuses the key
		// (fail closed); it does not unbind it.
		var err error
		e.bound = true
		e.cert, err = latchkey.ParseCertThumbprint(k.CertThumbprint)
		e.certBad = err != nil
	}
	switch {
	case k.Restrictions != nil && len(k.Restrictions.Scopes) > 0:
		r.scopes = strings.Join(k.Restrictions.Scopes, " ")
	case k.AppRestrictions != nil:
		r.scopes = strings.Join(k.AppRestrictions.Scopes, " ")
	}
	rl := effectiveRate(k.AppRestrictions, k.Restrictions)
	var reportRL *latchkey.RateLimit
	if k.ReportOnly != nil {
		reportRL = k.ReportOnly.RateLimit
	}
	d := k.SecretDigest
	var prev *Entry
	if old, ok := ix.byID[k.ID]; ok {
		os := ix.shard(&old)
		os.mu.Lock()
		if prev = os.byDigest[old]; prev != nil {
			// Under ix.mu, as Index.cell makes cells: a cell made for
			// prev before this point is carried over, one made after
			// it is made for e too.
			e.usage.Store(prev.usage.Load())
		}
		if old != d {
			delete(os.byDigest, old)
		}
		os.mu.Unlock()
		if prev != nil {
			ix.countFormat(prev.format, -1)
		}
	}
	// Keep the buckets when the limit did not change, so that editing a
	// description does not hand out a fresh burst.
	r.limit, r.reportLimit = newLimiter(rl), newLimiter(reportRL)
	if prev != nil && prev.rules != nil {
		if pl := prev.rules.limit; pl != nil && rl != nil && pl.cfg == *rl {
			r.limit = pl
		}
		if pl := prev.rules.reportLimit; pl != nil && reportRL != nil && pl.cfg == *reportRL {
			r.reportLimit = pl
		}
	}
	// Keep what this replica holds leased while the quota's generation
	// is the same: a resync or a description change drops nothing.
	r.quota = newQuotaCell(latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerKey, ID: k.ID}, k.Quota)
	if prev != nil && prev.rules != nil && prev.rules.quota.sameQuota(k.Quota) {
		r.quota = prev.rules.quota
	}
	if r.reportLimit != nil {
		r.reportRateKey = k.ID + reportSuffix
	}
	if k.ExternalID != "" || len(k.Metadata) > 0 {
		r.about = &about{externalID: k.ExternalID, metadata: k.Metadata, metadataHeader: latchkey.MetadataHeader(k.Metadata)}
	}
	r.identity = ix.compileIdentity(k.Identity)
	r.appMetadata = k.AppMetadata
	if r.about != nil || r.app != nil || r.key != nil || r.report != nil || r.limit != nil || r.scopes != "" ||
		r.reportLimit != nil || r.pub != nil || r.salt != "" || r.quota != nil || r.identity != nil || len(r.appMetadata) > 0 {
		e.rules = r
	}
	ix.byID[k.ID] = d
	ix.countFormat(e.format, 1)
	s := ix.shard(&d)
	s.mu.Lock()
	s.byDigest[d] = e
	s.mu.Unlock()
}

// cell returns e's usage cell, making it on the key's first decision. A
// cell is shared by every entry of the same key ID, so that usage recorded
// on an entry that a change has just replaced is not lost; a key deleted
// meanwhile gets a cell marked deleted, whose usage is dropped at flush.
func (ix *Index) cell(e *Entry) *usageCell {
	if c := e.usage.Load(); c != nil {
		return c
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if c := e.usage.Load(); c != nil {
		return c
	}
	c := &usageCell{id: e.ID}
	switch cur := ix.getLocked(e.ID); {
	case cur == nil:
		c.deleted.Store(true)
	case cur != e:
		if cc := cur.usage.Load(); cc != nil {
			c = cc
		} else {
			cur.usage.Store(c)
		}
	}
	e.usage.Store(c)
	return c
}

// Delete removes the key with the given ID. Verification fails for it from
// the moment Delete returns.
func (ix *Index) Delete(id string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.resyncing {
		ix.touched[id] = struct{}{}
	}
	if _, ok := ix.reloading[id]; ok {
		ix.reloading[id] = true
	}
	ix.deleteLocked(id)
}

// Reload replaces the entry of key id with what load reads from the store
// (nil: the key is gone), for a change feed that was told the key changed.
// If this process changes the key with Put or Delete while load runs,
// Reload leaves the entry alone: load may have read the store before that
// change committed, and putting what it read would undo the change (a key
// deleted or deactivated a moment ago would verify again). The change is
// at least as new as the notification being handled, and every later
// commit brings a notification of its own. Reload returns load's error,
// and then changes nothing. A change feed calls it for one key at a time.
func (ix *Index) Reload(id string, load func() (*latchkey.AccessKey, error)) error {
	ix.mu.Lock()
	ix.reloading[id] = false
	ix.mu.Unlock()
	k, err := load()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	changed := ix.reloading[id]
	delete(ix.reloading, id)
	if err != nil || changed {
		return err
	}
	if ix.resyncing {
		ix.touched[id] = struct{}{}
	}
	if k == nil {
		ix.deleteLocked(id)
	} else {
		ix.putLocked(k)
	}
	return nil
}

func (ix *Index) deleteLocked(id string) {
	d, ok := ix.byID[id]
	if !ok {
		return
	}
	delete(ix.byID, id)
	s := ix.shard(&d)
	s.mu.Lock()
	if e := s.byDigest[d]; e != nil {
		if c := e.usage.Load(); c != nil {
			c.deleted.Store(true)
		}
		ix.countFormat(e.format, -1)
	}
	delete(s.byDigest, d)
	s.mu.Unlock()
}

// Get returns the entry of a key ID, or nil.
func (ix *Index) Get(id string) *Entry {
	ix.mu.Lock()
	d, ok := ix.byID[id]
	ix.mu.Unlock()
	if !ok {
		return nil
	}
	return ix.Lookup(&d)
}

// Sync replaces the index's content with every key in the store. Changes
// applied with Put or Delete while Sync runs win over what Sync read, so a
// resync never brings back a key deleted meanwhile. It returns how many
// keys were loaded.
func (ix *Index) Sync(ctx context.Context, store latchkey.Store) (int, error) {
	ix.mu.Lock()
	ix.resyncing = true
	ix.touched = map[string]struct{}{}
	// Loading an empty index (start-up) removes nothing afterwards, so it
	// need not remember the million IDs it saw.
	var seen map[string]struct{}
	if len(ix.byID) > 0 {
		seen = map[string]struct{}{}
	}
	ix.mu.Unlock()
	defer func() {
		ix.mu.Lock()
		ix.resyncing = false
		ix.touched = nil
		ix.mu.Unlock()
	}()

	var keys []*latchkey.AccessKey
	n := 0
	err := store.ScanKeyIndex(ctx, func(k *latchkey.AccessKey) error {
		keys = append(keys, k)
		n++
		if len(keys) >= 4096 {
			ix.applySync(keys, seen)
			keys = keys[:0]
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	ix.applySync(keys, seen)
	if seen == nil {
		return n, nil
	}

	ix.mu.Lock()
	defer ix.mu.Unlock()
	for id := range ix.byID {
		if _, ok := seen[id]; ok {
			continue
		}
		if _, ok := ix.touched[id]; ok {
			continue
		}
		ix.deleteLocked(id)
	}
	return n, nil
}

// applySync puts keys read by Sync, unless a change arrived meanwhile,
// and notes their IDs in seen when seen is not nil.
func (ix *Index) applySync(keys []*latchkey.AccessKey, seen map[string]struct{}) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, k := range keys {
		if seen != nil {
			seen[k.ID] = struct{}{}
		}
		if _, ok := ix.touched[k.ID]; ok {
			continue
		}
		if cur := ix.getLocked(k.ID); cur != nil && cur.same(k) {
			continue
		}
		ix.putLocked(k)
	}
}

func (ix *Index) getLocked(id string) *Entry {
	d, ok := ix.byID[id]
	if !ok {
		return nil
	}
	return ix.Lookup(&d)
}

// effectiveRate is the key's own rate limit, or else its application's.
func effectiveRate(app, key *latchkey.Restrictions) *latchkey.RateLimit {
	if key != nil && key.RateLimit != nil {
		return key.RateLimit
	}
	if app != nil {
		return app.RateLimit
	}
	return nil
}

func (e *Entry) same(k *latchkey.AccessKey) bool {
	var exp int64
	if k.ExpiresAt != nil {
		exp = k.ExpiresAt.UnixNano()
	}
	return e.ID == k.ID && e.Account == k.Account && e.Application() == k.Application &&
		e.Principal() == k.Principal && e.kind == keyKind(k) &&
		e.Active == (k.Status == latchkey.StatusActive) && e.Canary == k.Canary && e.ExpiresAt == exp &&
		e.format == formatOf(k) &&
		// restrictions: compare the compiled forms' sources cheaply by
		// recompiling only when either side has any
		e.rules == nil && k.ExternalID == "" && len(k.Metadata) == 0 && k.Quota == nil &&
		k.Identity == nil && len(k.AppMetadata) == 0 &&
		k.AppRestrictions.Empty() && k.Restrictions.Empty() && k.ReportOnly.Empty()
}

// expired reports whether the entry's expiry is at or before now.
func (e *Entry) expired(now time.Time) bool {
	return e.ExpiresAt != 0 && now.UnixNano() >= e.ExpiresAt
}
