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
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// Entry is a copy of the index's record of one access key: what a decision
// needs and nothing else. The index hands out copies (Lookup, Get, and
// Result.Entry, a value), so a change to the key never changes an Entry
// someone holds. Its strings point into the index's arena, whose bytes are
// never rewritten; copying an Entry allocates nothing.
type Entry struct {
	ID        string
	Account   string
	ExpiresAt int64 // Unix nanoseconds; 0 = never

	rules *rules // nil: no restriction, no scope, no rate limit

	// owner is the application's name, or the principal's when kind is
	// not kindApplication.
	owner string
	// num and gen name the key's record, whose usage counters a
	// decision updates (usage.go).
	num, gen uint32
	kind     uint8
	Active   bool
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
	// thumbprint is rules.cert (latchkey.AccessKey.CertThumbprint), so
	// that the check costs an unbound key one byte's test; a bound key
	// always has rules. certBad marks a stored thumbprint that does not
	// parse: no certificate matches it.
	bound, certBad bool
}

// Found reports whether e is a key's entry: false for the zero Entry that
// a decision without a matching key carries.
func (e *Entry) Found() bool { return e != nil && e.num != 0 }

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
	cert             latchkey.CertThumbprint // a bound key's (Entry.bound)
}

// onlyCert reports whether r holds nothing but a certificate thumbprint:
// the rules of a bound key without restrictions (or no rules at all).
func (r *rules) onlyCert() bool {
	return r == nil || r.app == nil && r.key == nil && r.report == nil && r.limit == nil && r.scopes == "" &&
		r.reportLimit == nil && r.reportRateKey == "" && r.about == nil && r.pub == nil && r.salt == "" &&
		r.quota == nil && r.identity == nil && len(r.appMetadata) == 0
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

const shardCount = 256

// shard is one 256th of the keys by digest, with its own lock: readers
// take it shared, for the time it takes to find a record and copy it into
// an Entry; writers take it exclusively.
type shard struct {
	mu    sync.RWMutex
	t     table
	rules []ruleRef // index 0 is unused: rec.rules 0 means none
	free  []uint32  // unused indexes in rules
}

// ruleRef is a key's compiled rules and its record's number.
type ruleRef struct {
	r   *rules
	num uint32
}

// Index maps secret digests to entries. It is safe for concurrent use.
type Index struct {
	shards [shardCount]shard

	gate sync.RWMutex // see ReadUsage

	mu   sync.Mutex // guards what follows, and writes to records and the arena
	ids  [shardCount]table
	recs [maxRecChunks]atomic.Pointer[[recChunkSize]rec]
	// uses holds the usage slots (usageSlot), numbered from 1, made
	// on a key's first use (under usesMu); nuses is how many.
	uses   [maxRecChunks]atomic.Pointer[[recChunkSize]usageSlot]
	usesMu sync.Mutex
	nuses  uint32
	// nrecs is the number of records made (numbers 1..nrecs); free
	// holds the numbers of deleted ones, for reuse.
	nrecs uint32
	free  []uint32
	n     int
	arena arena
	// strs interns account and principal names: few, shared by many
	// keys.
	strs      map[string]strRef
	resyncing bool
	touched   map[string]struct{}
	// warmed keeps what warm read (under mu), and means nothing else.
	warmed uint64
	// pass numbers Sync's passes (rec.seen).
	pass uint32
	// syncing holds a token while a Sync runs, from start to end: Syncs
	// run one after another, never two passes at once, and one waiting
	// for its turn gives up when its context ends.
	syncing chan struct{}
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

	side usageSide // what usage records beside the records' counters
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{strs: map[string]strRef{}, reloading: map[string]bool{}, identities: map[string]*sharedBudget{}, syncing: make(chan struct{}, 1)}
	ix.side.init()
	return ix
}

// rec returns record num (1-based).
func (ix *Index) rec(num uint32) *rec {
	i := num - 1
	return &ix.recs[i>>recChunkBits].Load()[i&(recChunkSize-1)]
}

// newRec returns the number of an unused record, reusing a deleted one's.
// Called under mu.
func (ix *Index) newRec() uint32 {
	if n := len(ix.free); n > 0 {
		num := ix.free[n-1]
		ix.free = ix.free[:n-1]
		return num
	}
	i := ix.nrecs
	if i>>recChunkBits >= maxRecChunks {
		panic("verify: index full")
	}
	if i&(recChunkSize-1) == 0 {
		ix.recs[i>>recChunkBits].Store(new([recChunkSize]rec))
	}
	ix.nrecs++
	return ix.nrecs
}

// usageOf returns record num's usage slot, or nil while the record has
// none (its key was never used).
func (ix *Index) usageOf(num uint32) *usageSlot {
	if n := ix.rec(num).use.Load(); n != 0 {
		return ix.slot(n)
	}
	return nil
}

// usageSlotOf returns record num's usage slot, making it on the first
// need: a chunk's allocation once in recChunkSize slots, else none.
func (ix *Index) usageSlotOf(num uint32) *usageSlot {
	kr := ix.rec(num)
	if n := kr.use.Load(); n != 0 {
		return ix.slot(n)
	}
	ix.usesMu.Lock()
	defer ix.usesMu.Unlock()
	if n := kr.use.Load(); n != 0 {
		return ix.slot(n)
	}
	// There are never more slots than records, so they fit.
	i := ix.nuses
	if i&(recChunkSize-1) == 0 {
		ix.uses[i>>recChunkBits].Store(new([recChunkSize]usageSlot))
	}
	ix.nuses++
	kr.use.Store(ix.nuses)
	return ix.slot(ix.nuses)
}

// slot returns usage slot n (1-based).
func (ix *Index) slot(n uint32) *usageSlot {
	i := n - 1
	return &ix.uses[i>>recChunkBits].Load()[i&(recChunkSize-1)]
}

func (ix *Index) shardOf(h uint64) *shard { return &ix.shards[h%shardCount] }

// find returns the number of the record whose digest is d, or 0. Called
// under s's lock.
func (ix *Index) find(s *shard, d *keyformat.Digest, h uint64) uint32 {
	slots := s.t.slots
	if len(slots) == 0 {
		return 0
	}
	mask := uint64(len(slots) - 1)
	tag := h &^ 0xffffffff
	for i := home(h, mask); ; i = (i + 1) & mask {
		sl := slots[i]
		if sl == 0 {
			return 0
		}
		if sl&^0xffffffff == tag && ix.rec(uint32(sl)).digest == *d {
			return uint32(sl)
		}
	}
}

// fill copies record num, in shard s, into e. Called under s's lock.
func (ix *Index) fill(s *shard, num uint32, e *Entry) {
	r := ix.rec(num)
	*e = Entry{
		ID: ix.arena.strN(r.id, r.idLen), Account: ix.arena.strN(r.account, r.accountLen), ExpiresAt: r.expires,
		owner: ix.arena.strN(r.owner, r.ownerLen), num: num, gen: r.gen.Load(), kind: r.kind, format: r.format,
		Active: r.flags&flagActive != 0, Canary: r.flags&flagCanary != 0, signing: r.flags&flagSigning != 0,
		bound: r.flags&flagBound != 0, certBad: r.flags&flagCertBad != 0,
	}
	if r.rules != 0 {
		e.rules = s.rules[r.rules].r
	}
}

// lookup copies the entry for a digest into e, and reports whether there
// is one. It does not allocate.
func (ix *Index) lookup(d *keyformat.Digest, e *Entry) bool {
	h := digestHash(d)
	s := ix.shardOf(h)
	s.mu.RLock()
	num := ix.find(s, d, h)
	if num != 0 {
		ix.fill(s, num, e)
	}
	s.mu.RUnlock()
	return num != 0
}

// Lookup returns the entry for a digest, or nil.
func (ix *Index) Lookup(d *keyformat.Digest) *Entry {
	var e Entry
	if !ix.lookup(d, &e) {
		return nil
	}
	return &e
}

// Len returns the number of keys in the index.
func (ix *Index) Len() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.n
}

func (ix *Index) intern(s string) strRef {
	if s == "" {
		return 0
	}
	if v, ok := ix.strs[s]; ok {
		return v
	}
	r := ix.arena.put(s)
	ix.strs[s] = r
	return r
}

// numOf returns the record number of key id, or 0. Called under mu.
func (ix *Index) numOf(id string) uint32 {
	h := idHash(id)
	return ix.ids[h%shardCount].find(h, func(num uint32) bool { return ix.arena.str(ix.rec(num).id) == id })
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
	ix.maybeCompact()
}

func (ix *Index) putLocked(k *latchkey.AccessKey) {
	ix.putNum(k, ix.numOf(k.ID))
}

// putNum is putLocked for the key whose record is num (ix.numOf(k.ID)),
// 0 when the index has none.
func (ix *Index) putNum(k *latchkey.AccessKey, num uint32) {
	kind := keyKind(k)
	var flags uint8
	if k.Status == latchkey.StatusActive {
		flags |= flagActive
	}
	if k.Canary {
		flags |= flagCanary
	}
	var exp int64
	if k.ExpiresAt != nil {
		exp = k.ExpiresAt.UnixNano()
	}
	// The rules are built in a local value and copied to the heap only
	// when the key has any: most keys have none, and a load then makes
	// no rules value per key.
	rv := rules{app: compile(k.AppRestrictions), key: compile(k.Restrictions), report: compile(k.ReportOnly), pub: k.PublicKey,
		salt: string(k.Salt)}
	r := &rv
	if k.PublicKey != nil {
		flags |= flagSigning
	}
	if k.CertThumbprint != "" {
		// A stored thumbprint that does not parse refuses the key
		// (fail closed); it does not unbind it.
		var err error
		flags |= flagBound
		if r.cert, err = latchkey.ParseCertThumbprint(k.CertThumbprint); err != nil {
			r.cert = latchkey.CertThumbprint{}
			flags |= flagCertBad
		}
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
	h := digestHash(&d)
	ns := ix.shardOf(h)

	var prev *rules
	var kr *rec
	// oldRules is the rules slot of a key whose digest stays: it is freed
	// with the record's update, under the same lock. Freed here, a reader
	// could find the record between the two locked sections and see the
	// old version's fields without its rules.
	var oldRules uint32
	if num != 0 {
		kr = ix.rec(num)
		oh := digestHash(&kr.digest)
		os := ix.shardOf(oh)
		os.mu.Lock()
		if kr.rules != 0 {
			prev = os.rules[kr.rules].r
			if kr.digest == d {
				oldRules = kr.rules
			} else {
				// The record leaves this shard's table below: no
				// reader finds it until it is whole again.
				os.rules[kr.rules] = ruleRef{}
				os.free = append(os.free, kr.rules)
				kr.rules = 0
			}
		}
		if kr.digest != d {
			os.t.remove(oh, num)
		}
		os.mu.Unlock()
		ix.countFormat(kr.format, -1)
	}
	// Keep the buckets when the limit did not change, so that editing a
	// description does not hand out a fresh burst.
	r.limit, r.reportLimit = newLimiter(rl), newLimiter(reportRL)
	if prev != nil {
		if pl := prev.limit; pl != nil && rl != nil && pl.cfg == *rl {
			r.limit = pl
		}
		if pl := prev.reportLimit; pl != nil && reportRL != nil && pl.cfg == *reportRL {
			r.reportLimit = pl
		}
	}
	// Keep what this replica holds leased while the quota's generation
	// is the same: a resync or a description change drops nothing.
	r.quota = newQuotaCell(latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerKey, ID: k.ID}, k.Quota)
	if prev != nil && prev.quota.sameQuota(k.Quota) {
		r.quota = prev.quota
	}
	if r.reportLimit != nil {
		r.reportRateKey = k.ID + reportSuffix
	}
	if k.ExternalID != "" || len(k.Metadata) > 0 {
		r.about = &about{externalID: k.ExternalID, metadata: k.Metadata, metadataHeader: latchkey.MetadataHeader(k.Metadata)}
	}

	// The strings: kept when unchanged, so that replacing a key (and a
	// resync) does not grow the arena.
	owner, interned := k.Application, false
	if kind != kindApplication {
		owner, interned = k.Principal, true
	}
	var idRef, ownerRef strRef
	fresh := num == 0
	if fresh {
		num = ix.newRec()
		kr = ix.rec(num)
		idRef = ix.arena.put(k.ID)
	} else {
		idRef = kr.id
		ownerRef = kr.owner
		if ix.arena.str(ownerRef) != owner || kr.ownerIn != interned {
			if !kr.ownerIn {
				ix.arena.drop(ownerRef)
			}
			ownerRef = 0
		}
	}
	if ownerRef == 0 {
		if interned {
			ownerRef = ix.intern(owner)
		} else {
			// Application names are not interned: an application has
			// at most a few keys, and an entry in the intern table
			// costs more than the copies it would save.
			ownerRef = ix.arena.put(owner)
		}
	}
	r.identity = ix.compileIdentity(k.Identity)
	r.appMetadata = k.AppMetadata
	ns.mu.Lock()
	if oldRules != 0 {
		ns.rules[oldRules] = ruleRef{}
		ns.free = append(ns.free, oldRules)
		kr.rules = 0
	}
	moved := fresh || kr.digest != d
	kr.digest, kr.expires = d, exp
	kr.id, kr.owner, kr.account = idRef, ownerRef, ix.intern(k.Account)
	kr.idLen, kr.ownerLen, kr.accountLen = lenByte(k.ID), lenByte(owner), lenByte(k.Account)
	kr.kind, kr.format, kr.flags, kr.ownerIn, kr.live = kind, formatOf(k), flags, interned, true
	if r.about != nil || r.app != nil || r.key != nil || r.report != nil || r.limit != nil || r.scopes != "" ||
		r.reportLimit != nil || r.pub != nil || r.salt != "" || r.quota != nil || r.identity != nil || len(r.appMetadata) > 0 ||
		flags&flagBound != 0 {
		var i uint32
		if n := len(ns.free); n > 0 {
			i = ns.free[n-1]
			ns.free = ns.free[:n-1]
		} else {
			if len(ns.rules) == 0 {
				ns.rules = append(ns.rules, ruleRef{})
			}
			i = uint32(len(ns.rules))
			ns.rules = append(ns.rules, ruleRef{})
		}
		kept := rv // the heap copy
		ns.rules[i] = ruleRef{r: &kept, num: num}
		kr.rules = i
	}
	if moved {
		ns.t.insert(h, num)
	}
	ns.mu.Unlock()
	if fresh {
		ih := idHash(k.ID)
		ix.ids[ih%shardCount].insert(ih, num)
		ix.n++
	}
	if ix.resyncing {
		kr.seen = ix.pass
	}
	ix.countFormat(kr.format, 1)
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
	ix.maybeCompact()
}

// maybeCompact copies the strings of the keys in the index into fresh
// arena chunks once most of the arena is strings of deleted or renamed
// keys, so that the arena follows the keys down. It holds one shard's lock
// at a time: verification is never stopped, only each shard for the time
// its records take. The old chunks are dropped from the arena; strings
// read from them before stay valid (the collector frees a chunk when no
// string points into it). Called under mu.
func (ix *Index) maybeCompact() {
	a := &ix.arena
	if a.dead < 4<<20 || a.dead < a.live {
		return
	}
	ix.compact()
}

func (ix *Index) compact() {
	a := &ix.arena
	old := a.used
	a.used, a.cur = nil, nil
	a.live, a.dead = 0, 0
	ix.strs = map[string]strRef{}
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.Lock()
		for _, sl := range s.t.slots {
			if sl == 0 {
				continue
			}
			kr := ix.rec(uint32(sl))
			kr.id = a.put(a.str(kr.id))
			if kr.ownerIn {
				kr.owner = ix.intern(a.str(kr.owner))
			} else {
				kr.owner = a.put(a.str(kr.owner))
			}
			kr.account = ix.intern(a.str(kr.account))
		}
		s.mu.Unlock()
	}
	for _, idx := range old {
		a.chunks[idx].Store(nil)
		a.free = append(a.free, idx)
	}
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
	ix.maybeCompact()
	return nil
}

func (ix *Index) deleteLocked(id string) {
	num := ix.numOf(id)
	if num == 0 {
		return
	}
	ih := idHash(id)
	ix.ids[ih%shardCount].remove(ih, num)
	kr := ix.rec(num)
	h := digestHash(&kr.digest)
	s := ix.shardOf(h)
	s.mu.Lock()
	s.t.remove(h, num)
	if kr.rules != 0 {
		s.rules[kr.rules] = ruleRef{}
		s.free = append(s.free, kr.rules)
	}
	// Usage recorded from here on through an Entry of the key is
	// dropped.
	kr.gen.Add(1)
	ix.countFormat(kr.format, -1)
	ix.arena.drop(kr.id)
	if !kr.ownerIn {
		ix.arena.drop(kr.owner)
	}
	kr.digest, kr.expires = keyformat.Digest{}, 0
	kr.id, kr.owner, kr.account, kr.rules, kr.seen = 0, 0, 0, 0, 0
	kr.idLen, kr.ownerLen, kr.accountLen = 0, 0, 0
	kr.kind, kr.format, kr.flags, kr.live, kr.ownerIn = 0, 0, 0, false, false
	s.mu.Unlock()
	if sl := ix.usageOf(num); sl != nil {
		sl.reset()
	}
	ix.forgetUsage(num)
	ix.free = append(ix.free, num)
	ix.n--
}

// Get returns the entry of a key ID, or nil.
func (ix *Index) Get(id string) *Entry {
	var e Entry
	ix.mu.Lock()
	ok := ix.getLocked(id, &e)
	ix.mu.Unlock()
	if !ok {
		return nil
	}
	return &e
}

// getLocked copies the entry of key id into e. Called under mu.
func (ix *Index) getLocked(id string, e *Entry) bool {
	return ix.entryOf(ix.numOf(id), e)
}

// entryOf fills e with record num's entry; false when num is 0.
func (ix *Index) entryOf(num uint32, e *Entry) bool {
	if num == 0 {
		return false
	}
	s := ix.shardOf(digestHash(&ix.rec(num).digest))
	s.mu.RLock()
	ix.fill(s, num, e)
	s.mu.RUnlock()
	return true
}

// Sync replaces the index's content with every key in the store. Changes
// applied with Put or Delete while Sync runs win over what Sync read, so a
// resync never brings back a key deleted meanwhile. It returns how many
// keys were loaded. It marks the keys it reads in their records rather
// than in a set of IDs, so a resync of a full index takes no memory of its
// own beyond a batch of keys. A Sync called while another runs waits for
// it, or returns ctx's error when ctx ends first.
func (ix *Index) Sync(ctx context.Context, store latchkey.Store) (int, error) {
	select {
	case ix.syncing <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-ix.syncing }()
	ix.mu.Lock()
	ix.resyncing = true
	ix.touched = map[string]struct{}{}
	ix.pass++
	pass := ix.pass
	// Into an empty index (a start-up's load) every key the store gives
	// is new: a key is read once (latchkey.Store.ScanKeyIndex's contract,
	// and ScanKeyParts'), and one that a Put, Delete or Reload changed
	// meanwhile is in touched and skipped. Its ID is then not
	// looked up first, which at millions of keys is a cache miss a key
	// on the goroutine that puts them.
	empty := ix.n == 0
	ix.mu.Unlock()
	// A load into an empty index grows its tables toward the store's
	// estimate of its keys four times at a time, instead of doubling each
	// a dozen times (moving every slot each time) on the way to millions
	// of keys. What quadrupling overshot is trimmed once the load ends,
	// whether it succeeded or not.
	aimed := false
	defer func() {
		ix.mu.Lock()
		ix.resyncing = false
		ix.touched = nil
		if aimed {
			ix.trimTables()
		}
		ix.mu.Unlock()
	}()
	if kc, ok := store.(keyCounter); ok && empty {
		if n, err := kc.KeyCountEstimate(ctx); err == nil && n > 0 {
			ix.aimTables(n)
			aimed = true
		}
	}

	// The store decodes rows while another goroutine puts the previous
	// batches into the index: on more than one core the two overlap, and
	// a store that can read its keys in parts (keyIndexPartScanner)
	// decodes them on a goroutine per part, one per core. At most parts+2
	// batches are alive at once (one being read per part, one queued,
	// one being put), so a resync's own memory stays a few batches of
	// keys, whatever their number.
	parts := 1
	ps, split := store.(keyIndexPartScanner)
	if split && ps.KeyIndexParts() {
		parts = min(runtime.GOMAXPROCS(0), maxLoadParts)
	}
	batches := make(chan []*latchkey.AccessKey, 1)
	// A store that can decode into recycled values gets them back from
	// the putting goroutine once their batch is in the index (putLocked
	// keeps nothing of an AccessKey but values the store made for that
	// row): a load then makes parts+2 batches of AccessKeys, not one per
	// key. The channel holds every batch that can exist, so returning
	// one never blocks.
	into, reuse := store.(keyIndexScanner)
	reuse = reuse || split
	spare := make(chan []*latchkey.AccessKey, parts+2)
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for keys := range batches {
			ix.applySync(keys, empty)
			if reuse {
				spare <- keys[:0]
			}
		}
	}()
	newBatch := func() []*latchkey.AccessKey {
		if reuse {
			select {
			case keys := <-spare:
				return keys
			default:
			}
		}
		return make([]*latchkey.AccessKey, 0, syncBatch)
	}
	// Each part fills a batch of its own; only the part's goroutine
	// touches it.
	keys := make([][]*latchkey.AccessKey, parts)
	counts := make([]int, parts)
	for i := range keys {
		keys[i] = newBatch()
	}
	add := func(part int, k *latchkey.AccessKey) error {
		keys[part] = append(keys[part], k)
		counts[part]++
		if len(keys[part]) >= syncBatch {
			batches <- keys[part]
			keys[part] = newBatch()
		}
		return nil
	}
	// next hands out the AccessKey in the slot the part's batch's next
	// key goes to: a recycled batch still has its values past len.
	next := func(part int) *latchkey.AccessKey {
		b := keys[part]
		if l := len(b); l < cap(b) {
			if k := b[:l+1][l]; k != nil {
				return k
			}
		}
		return new(latchkey.AccessKey)
	}
	var err error
	switch {
	case split:
		err = ps.ScanKeyIndexParts(ctx, parts, next, add)
	case reuse:
		err = into.ScanKeyIndexInto(ctx, func() *latchkey.AccessKey { return next(0) }, func(k *latchkey.AccessKey) error { return add(0, k) })
	default:
		err = store.ScanKeyIndex(ctx, func(k *latchkey.AccessKey) error { return add(0, k) })
	}
	n := 0
	for i, b := range keys {
		if err == nil && len(b) > 0 {
			batches <- b
		}
		n += counts[i]
	}
	close(batches)
	<-applied
	if err != nil {
		return 0, err
	}

	ix.mu.Lock()
	defer ix.mu.Unlock()
	for num := uint32(1); num <= ix.nrecs; num++ {
		r := ix.rec(num)
		if !r.live || r.seen == pass {
			continue
		}
		id := ix.arena.str(r.id)
		if _, ok := ix.touched[id]; ok {
			continue
		}
		ix.deleteLocked(id)
	}
	ix.maybeCompact()
	return n, nil
}

// keyCounter is a store that can tell roughly how many keys it holds
// without counting them (sqlstore.DB's: SQLite's and PostgreSQL's), 0
// when it cannot tell.
type keyCounter interface {
	KeyCountEstimate(ctx context.Context) (int, error)
}

// aimTables aims every table at its share of n keys in all (table.aimFor),
// with room for three standard deviations of the spread by hash.
func (ix *Index) aimTables(n int) {
	n = min(n, maxRecChunks*recChunkSize)
	per := n / shardCount
	per += 3*int(math.Sqrt(float64(per))) + 1
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.Lock()
		s.t.aimFor(per)
		s.mu.Unlock()
		ix.ids[i].aimFor(per)
	}
}

// trimTables ends the tables' aims and trims them (table.trim): after a
// load, each table is the size doubling would have given it, estimate or
// none, whether the load succeeded or not. Called under mu.
func (ix *Index) trimTables() {
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.Lock()
		s.t.trim()
		s.mu.Unlock()
		ix.ids[i].trim()
	}
}

// maxLoadParts bounds the parts Sync reads at once: one per core, and
// more than a few cores would only take connections from the store.
const maxLoadParts = 4

// keyIndexPartScanner is a store that can read its keys in parts at once,
// on a goroutine each (sqlstore.DB's, when its store can split the key
// rows: SQLite's and PostgreSQL's). next and fn are called for a part from
// that part's goroutine.
type keyIndexPartScanner interface {
	KeyIndexParts() bool
	ScanKeyIndexParts(ctx context.Context, parts int, next func(part int) *latchkey.AccessKey, fn func(part int, k *latchkey.AccessKey) error) error
}

// keyIndexScanner is a store whose ScanKeyIndex can decode into values
// the caller recycles (sqlstore.DB's, so SQLite's and PostgreSQL's).
type keyIndexScanner interface {
	ScanKeyIndexInto(ctx context.Context, next func() *latchkey.AccessKey, fn func(*latchkey.AccessKey) error) error
}

// applySync puts keys read by Sync, unless a change arrived meanwhile,
// and marks them seen by this pass.
func (ix *Index) applySync(keys []*latchkey.AccessKey, empty bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var cur Entry
	for len(keys) > 0 {
		part := keys[:min(len(keys), warmAhead)]
		keys = keys[len(part):]
		ix.warmed += ix.warm(part, empty)
		for _, k := range part {
			if _, ok := ix.touched[k.ID]; ok {
				continue
			}
			var num uint32
			if !empty {
				if num = ix.numOf(k.ID); ix.entryOf(num, &cur) && cur.same(k) {
					ix.rec(num).seen = ix.pass
					continue
				}
			}
			ix.putNum(k, num)
		}
	}
	ix.maybeCompact()
}

// syncBatch is how many keys Sync hands from the goroutines that read the
// store to the one that puts them into the index at a time.
const syncBatch = 4096

// warmAhead is how many keys applySync warms at a time: few enough that
// their slots' lines, and the keys themselves, are still in the core's
// cache when the keys are put.
const warmAhead = 256

// warm reads, for each of keys, the slot at which its ID's lookup or
// insert starts in the ID table and, on a first load (empty), the one at
// which its digest's insert starts in its shard's table (a resync puts
// only the keys that changed, and most keys have not). At millions of keys
// those are cache misses, one after another in the loop that puts the
// keys, where the table inserts took more than half of the putting
// goroutine's time (BenchmarkSyncApply's profile); here no read depends on
// another, so the core has many of them in flight at once, and the loop
// that follows finds the lines in the cache. Called under mu, which every
// writer of the tables holds. It returns the sum of what it read, which
// the caller keeps so that the reads are not optimised away.
func (ix *Index) warm(keys []*latchkey.AccessKey, empty bool) uint64 {
	var sum uint64
	for _, k := range keys {
		ih := idHash(k.ID)
		if sl := ix.ids[ih%shardCount].slots; len(sl) > 0 {
			sum += sl[home(ih, uint64(len(sl)-1))]
		}
		if !empty {
			continue
		}
		h := digestHash(&k.SecretDigest)
		if sl := ix.shardOf(h).t.slots; len(sl) > 0 {
			sum += sl[home(h, uint64(len(sl)-1))]
		}
	}
	return sum
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
		e.format == formatOf(k) && e.bound == (k.CertThumbprint != "") && (!e.bound || e.certMatchesStored(k.CertThumbprint)) &&
		// restrictions: compare the compiled forms' sources cheaply by
		// recompiling only when either side has any
		e.rules.onlyCert() && k.ExternalID == "" && len(k.Metadata) == 0 && k.Quota == nil &&
		k.Identity == nil && len(k.AppMetadata) == 0 &&
		k.AppRestrictions.Empty() && k.Restrictions.Empty() && k.ReportOnly.Empty()
}

// certMatchesStored reports whether e is bound to the thumbprint stored as
// s (and, like the entry Put would make, refuses it when it does not parse).
func (e *Entry) certMatchesStored(s string) bool {
	c, err := latchkey.ParseCertThumbprint(s)
	if err != nil {
		return e.certBad
	}
	return !e.certBad && e.rules != nil && c == e.rules.cert
}
