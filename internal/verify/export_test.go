package verify

import (
	"time"

	"github.com/latchkey/latchkey"
)

// view is what an Entry and its rules decide with, without what differs
// between two loads of the same keys (record numbers, rate limiters' and
// quota cells' state).
type view struct {
	ID, Account, Application, Principal                string
	Role                                               latchkey.Role
	ExpiresAt                                          int64
	Active, Canary, signing, bound, certBad, principal bool
	kind, format                                       uint8
	Scopes, ExternalID, MetadataHeader                 string
	Metadata, AppMetadata, IdentityMetadata            string
	IdentityID, IdentityExternalID                     string
	Restricted, hasRules                               bool
	app, key, report                                   *policy
	limit, reportLimit                                 *latchkey.RateLimit
	reportRateKey, salt                                string
	pub                                                *latchkey.PublicKey
	quota                                              bool
	cert                                               latchkey.CertThumbprint
}

// EntryView returns view of e, for tests that compare two indexes.
func EntryView(e *Entry) any {
	v := view{ID: e.ID, Account: e.Account, Application: e.Application(), Principal: e.Principal(), Role: e.Role(),
		ExpiresAt: e.ExpiresAt, Active: e.Active, Canary: e.Canary, signing: e.signing, bound: e.bound, certBad: e.certBad,
		principal: e.IsPrincipal(), kind: e.kind, format: e.format, Scopes: e.Scopes(), ExternalID: e.ExternalID(),
		MetadataHeader: e.MetadataHeader(), Metadata: string(e.Metadata()), AppMetadata: string(e.ApplicationMetadata()),
		IdentityMetadata: string(e.IdentityMetadata()), IdentityID: e.IdentityID(), IdentityExternalID: e.IdentityExternalID(),
		Restricted: e.Restricted(), hasRules: e.rules != nil}
	if r := e.rules; r != nil {
		v.app, v.key, v.report = r.app, r.key, r.report
		if r.limit != nil {
			v.limit = &r.limit.cfg
		}
		if r.reportLimit != nil {
			v.reportLimit = &r.reportLimit.cfg
		}
		v.reportRateKey, v.salt, v.pub, v.quota, v.cert = r.reportRateKey, r.salt, r.pub, r.quota != nil, r.cert
	}
	return v
}

// EntryNum is the number of e's record.
func EntryNum(e *Entry) uint32 { return e.num }

// ApplyLoad puts keys into ix, which is empty, as a start-up's Sync puts
// them (the tables aimed at their number, applySync a batch at a time,
// the tables trimmed), without the store and the goroutines that read
// it.
func ApplyLoad(ix *Index, keys []*latchkey.AccessKey) {
	ix.aimTables(len(keys))
	for len(keys) > 0 {
		b := keys[:min(len(keys), syncBatch)]
		keys = keys[len(b):]
		ix.applySync(b, true)
	}
	ix.mu.Lock()
	ix.trimTables()
	ix.mu.Unlock()
}

// SetRecorderClock makes r's flushes tell which minutes are over by now
// instead of the wall clock.
func SetRecorderClock(r *Recorder, now func() time.Time) { r.now = now }
