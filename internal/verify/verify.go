package verify

import (
	"crypto/subtle"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpsig"
	"github.com/latchkey/latchkey/keyformat"
)

// Request is a credential presented for verification, with what is known of
// the call that carried it.
type Request struct {
	Secret      string
	AccessKeyID string // optional; when given it must be the secret's key
	IP          netip.Addr
	UserAgent   string
	Referrer    string
	// Scope the call needs ("" = no scope check).
	Scope string
	// Mobile app identity, from X-Android-Package, X-Android-Cert and
	// X-Ios-Bundle-Identifier.
	AndroidPackage string
	AndroidCert    string
	IOSBundleID    string

	// Account, when not empty, limits the answer to keys of that account:
	// a key of another account is NOT_FOUND.
	Account string
	// Principal asks for an admin principal's key instead of an
	// application's.
	Principal bool

	// Cost is what the call takes from the key's quota: 0 means 1, and
	// FreeCost (any negative value) takes nothing, but a spent quota
	// still refuses the call.
	Cost int64

	// Surface and Path say where the credential was presented, for the
	// alert a canary key raises (latchkey.CanaryUse); they do not change
	// the decision.
	Surface string
	Path    string

	// ClientCert is the thumbprint of the TLS client certificate the
	// call presented, when HasClientCert: from the proxy's own TLS
	// connection, or from a trusted gateway's header. A key bound to a
	// certificate (latchkey.AccessKey.CertThumbprint) is
	// CERTIFICATE_MISMATCH without the same one.
	ClientCert    latchkey.CertThumbprint
	HasClientCert bool

	// Extra holds the secrets of further credentials the call carried
	// (httpapi.Credential.Extra). Any makes the call
	// CREDENTIAL_AMBIGUOUS; each is looked up only for a canary's alert.
	Extra []string
}

// Result is the decision. Entry is set (Entry.Found) when the credential
// matched a key of the requested kind and account, whatever the code: a
// copy of the key's entry, so that deciding allocates nothing.
type Result struct {
	Code  latchkey.Code
	Entry Entry
	// Rate describes the key's rate limit bucket; Rate.Limit is 0 when the
	// key has no rate limit.
	Rate RateInfo
	// WouldDeny is the code a report-only restriction would have given a
	// valid call ("" when none would deny).
	WouldDeny latchkey.Code
	// Quota describes the key's quota after the call; Quota.Limited is
	// false when the key has none.
	Quota QuotaInfo
	// RetryAfter is set for THROTTLED.
	RetryAfter time.Duration
	// Err says why a signature was refused (an *httpsig.Error, or the
	// nonce store's error), for the caller's message; nil otherwise.
	Err error
}

// Valid reports whether the decision lets the call through.
func (r Result) Valid() bool { return r.Code == latchkey.CodeValid }

// Verifier decides on credentials using the index only.
type Verifier struct {
	Index    *Index
	Recorder *Recorder
	// Now, when set, is the clock: expiry, usage times, rate limits and
	// quotas are read from it. Unset (as New leaves it), a decision reads
	// the wall time to the nanosecond from the monotonic clock (clock.go,
	// cheaper than time.Now where reading the clock is slow) when a check
	// it reaches needs the time: the guard for an address it tracks, the
	// expiry of a key that has one, a rate limit, a quota, a signature's
	// window, or the recording of a refusal. A valid call whose decision
	// reached none of these reads no clock: its usage is recorded at the
	// time of a coarse clock, up to about 10 ms early (usageClock).
	Now func() time.Time
	// coarse is the coarse clock; nil: usageClock.
	coarse *coarseClock
	// Guard throttles client addresses that send many invalid
	// credentials; nil disables it.
	Guard *Guard
	// Observer, when set, is told every decision and how long it took
	// (metrics.go).
	Observer Observer
	// Rates, when set, keeps rate limits in a store shared by the
	// replicas instead of in this process; OnRateStoreError says what a
	// call gets when it cannot answer.
	Rates            RateStore
	OnRateStoreError RateStoreFailure
	// Canary, when set, is told every use of a canary key. It is called
	// on the hot path and must not block (manage.CanaryAlerts queues).
	Canary CanaryHook
	// Signatures judges signing keys' request signatures (VerifySigned);
	// nil: the default window and skew with an in-process nonce cache.
	Signatures *httpsig.Policy
	// Quotas leases keys' quotas from the ledger (quota.go), QuotaLease
	// units at most at a time (0: DefaultQuotaLease). Without it, a key
	// with a quota is refused QUOTA_EXCEEDED: fail closed.
	Quotas     QuotaLeaser
	QuotaLease int64
	// SharedQuotas, when set, holds what replicas lease from the ledger
	// in a store they all share, and decides each call there in one
	// atomic step (quota.go); it fails closed when it cannot answer.
	SharedQuotas QuotaStore
}

// FreeCost is a Request.Cost that takes nothing from a quota.
const FreeCost = -1

// CanaryHook is told of each use of a canary key, after the decision
// (NOT_FOUND) is made and before it is returned.
type CanaryHook interface {
	CanaryUsed(e *Entry, req *Request, at time.Time)
}

// New returns a verifier over ix that records usage with rec.
func New(ix *Index, rec *Recorder) *Verifier {
	return &Verifier{Index: ix, Recorder: rec}
}

// now reads the Verifier's clock.
func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return wallNow()
}

// clock is one decision's time: read at most once, and only if the
// decision needs it.
type clock struct {
	v    *Verifier
	t    time.Time
	read bool
}

// now returns the decision's time, reading the clock on the first call.
func (c *clock) now() time.Time {
	if !c.read {
		c.t, c.read = c.v.now(), true
	}
	return c.t
}

// usage returns the time to record a valid call's use at: the decision's
// time when it has one or when the Verifier's clock is set, otherwise the
// coarse clock's. (Refusals are recorded at the decision's time: a
// refusal of a key deactivated a moment ago is the evidence, which
// rotation looks for, that something still uses it, and it must not seem
// to come before the deactivation.)
func (c *clock) usage() time.Time {
	if c.read || c.v.Now != nil {
		return c.now()
	}
	u := c.v.coarse
	if u == nil {
		u = usageClock
	}
	return time.Unix(0, u.now())
}

// Verify decides on a credential. It never touches the store and does not
// allocate, except that a key with a rate limit asks the shared RateStore
// when there is one. Unknown keys, keys of another account or kind, and a wrong
// access key ID all give NOT_FOUND: from outside they look the same.
// The order of checks: CREDENTIAL_AMBIGUOUS (more than one credential),
// MISSING, THROTTLED (the client address sent too many invalid
// credentials), MALFORMED (not latchkey-shaped, and no imported key
// exists), NOT_FOUND, INACTIVE, EXPIRED, CERTIFICATE_MISMATCH (a key
// bound to a client certificate the call did not present),
// IP_NOT_ALLOWED, REFERRER_NOT_ALLOWED, APP_NOT_ALLOWED, SCOPE_DENIED
// (application restrictions, then the key's), RATE_LIMITED (the key's
// limit, then its identity's), QUOTA_EXCEEDED (the key's quota and its
// identity's: both pay, or neither). The rate limit and the quota come last, so refused
// calls use up neither a key's tokens nor its quota.
//
// A canary key is NOT_FOUND as soon as it is found, whatever else the call
// carries, by the branch an unknown key takes (the guard counts it as a
// failure, no usage is recorded, no entry is returned), and the Canary hook
// is told: nothing about the answer tells a canary from a dead key. A
// canary among several credentials is told too, and the answer is
// CREDENTIAL_AMBIGUOUS whatever they are.
func (v *Verifier) Verify(req *Request) (res Result) {
	// decide fills the result in place: a Result is some 200 bytes,
	// which returning it from each function would copy.
	o := v.Observer
	if o == nil {
		v.decide(req, &res)
		return res
	}
	// Reading the clock twice costs more than a decision on some
	// machines: time one decision in LatencySample.
	if rand.Uint32()%LatencySample != 0 {
		v.decide(req, &res)
		o.Decided(res.Code)
		return res
	}
	start := time.Now()
	v.decide(req, &res)
	o.Took(time.Since(start))
	o.Decided(res.Code)
	return res
}

// decide decides on req into res, which is the zero Result.
func (v *Verifier) decide(req *Request, res *Result) {
	if len(req.Extra) > 0 {
		v.Canaries(req)
		*res = Result{Code: latchkey.CodeCredentialAmbiguous}
		return
	}
	if req.Secret == "" {
		*res = Result{Code: latchkey.CodeMissing}
		return
	}
	clk := clock{v: v}
	if v.Guard != nil && req.IP.IsValid() {
		if wait := v.Guard.blocked(req.IP, &clk); wait > 0 {
			// A canary still alerts: a thief who first tried the dead
			// keys of the same dump is throttled by then.
			v.Canaries(req)
			*res = Result{Code: latchkey.CodeThrottled, RetryAfter: wait}
			return
		}
	}
	e := &res.Entry
	var found bool
	// The checksum only tells MALFORMED from NOT_FOUND, so it is checked
	// when the lookup finds nothing: a secret whose digest is a native
	// key's is that key's secret, whose checksum is right. (A found key
	// of an imported format is taken as before: only with a right
	// checksum.)
	shaped := keyformat.SecretShaped(req.Secret)
	if shaped {
		d := keyformat.Sum(req.Secret) // does not allocate
		found = v.Index.lookup(&d, e)
		if (!found || e.format != formatNative) && !keyformat.ValidSecret(req.Secret) {
			shaped, found = false, false
		}
	}
	if !shaped {
		// not latchkey-shaped, but imported keys exist: one lookup per
		// hash format in use, and NOT_FOUND when none matches
		f, ok := v.Index.lookupImported(req.Secret, req.AccessKeyID, e)
		if !ok {
			v.Guard.fail(req.IP, &clk)
			*res = Result{Code: latchkey.CodeMalformed}
			return
		}
		found = f
	}
	if !found || e.Canary {
		v.Guard.fail(req.IP, &clk)
		if found && v.Canary != nil {
			v.canaryUsed(e, req, clk.now())
		}
		*res = Result{Code: latchkey.CodeNotFound}
		return
	}
	if req.AccessKeyID != "" && subtle.ConstantTimeCompare([]byte(req.AccessKeyID), []byte(e.ID)) != 1 {
		v.Guard.fail(req.IP, &clk)
		*res = Result{Code: latchkey.CodeNotFound}
		return
	}
	if req.Principal != e.IsPrincipal() || (req.Account != "" && req.Account != e.Account) || e.signing {
		v.Guard.fail(req.IP, &clk)
		*res = Result{Code: latchkey.CodeNotFound}
		return
	}
	v.judge(req, res, &clk)
}

// judge decides on a call whose credential proved to be res.Entry's:
// status, expiry, restrictions, rate limit, and records the outcome in
// res.
func (v *Verifier) judge(req *Request, res *Result, clk *clock) {
	e := &res.Entry
	r := e.rules
	code := latchkey.CodeValid
	switch {
	case !e.Active:
		code = latchkey.CodeInactive
	case e.ExpiresAt != 0 && clk.now().UnixNano() >= e.ExpiresAt: // only a key with an expiry reads the clock
		code = latchkey.CodeExpired
	case e.bound && !req.certMatches(e):
		code = latchkey.CodeCertificateMismatch
	case r != nil:
		if code = r.app.check(req); code == latchkey.CodeValid {
			code = r.key.check(req)
		}
	}
	ix := v.Index
	res.Code = code
	if code != latchkey.CodeValid {
		v.Recorder.reject(ix, e, clk.now(), req.IP, req.UserAgent, code)
		return
	}
	if r == nil {
		v.Recorder.use(ix, e, clk.usage(), req.IP, req.UserAgent)
		return
	}
	if r.limit != nil {
		ok, info := v.allow(e.ID, r.limit, clk.now())
		res.Rate = info
		if !ok {
			v.Recorder.reject(ix, e, clk.now(), req.IP, req.UserAgent, latchkey.CodeRateLimited)
			res.Code = latchkey.CodeRateLimited
			return
		}
	}
	var iq *quotaCell
	if id := r.identity; id != nil {
		iq = id.quota
		if id.limit != nil {
			// The identity's limit is shared by all its keys: in the
			// RateStore under the identity's name.
			ok, info := v.allow(id.rateKey, id.limit, clk.now())
			if res.Rate.Limit == 0 || !ok {
				res.Rate = info
			}
			if !ok {
				v.Recorder.reject(ix, e, clk.now(), req.IP, req.UserAgent, latchkey.CodeRateLimited)
				res.Code = latchkey.CodeRateLimited
				return
			}
		}
	}
	if r.quota != nil || iq != nil {
		cost := req.Cost
		switch {
		case cost == 0:
			cost = 1
		case cost < 0:
			cost = 0
		}
		ok, info := v.spendQuotas(r.quota, iq, cost, clk.now())
		res.Quota = info
		if !ok {
			v.Recorder.reject(ix, e, clk.now(), req.IP, req.UserAgent, latchkey.CodeQuotaExceeded)
			res.Code = latchkey.CodeQuotaExceeded
			if !info.Reset.IsZero() {
				res.RetryAfter = info.Reset.Sub(clk.now())
			}
			return
		}
	}
	if r.report != nil || r.reportLimit != nil {
		wd := r.report.check(req)
		if wd == latchkey.CodeValid && r.reportLimit != nil {
			if ok, _ := v.allow(r.reportRateKey, r.reportLimit, clk.now()); !ok {
				wd = latchkey.CodeRateLimited
			}
		}
		if wd != latchkey.CodeValid {
			res.WouldDeny = wd
			v.Recorder.wouldDeny(ix, e, clk.now(), req.IP, req.UserAgent, wd)
		}
	}
	v.Recorder.use(ix, e, clk.usage(), req.IP, req.UserAgent)
}

// certMatches reports whether the call presented the certificate e is
// bound to, comparing in constant time.
func (req *Request) certMatches(e *Entry) bool {
	return req.HasClientCert && !e.certBad && e.rules != nil && subtle.ConstantTimeCompare(req.ClientCert[:], e.rules.cert[:]) == 1
}

// Canaries tells the Canary hook of every canary key among req's
// credentials (Secret and Extra), deciding and recording nothing else.
// It is for calls refused before their credential is judged: more than
// one credential, a throttled client address, or a credential in the URL
// beside the headers'.
func (v *Verifier) Canaries(req *Request) {
	if v.Canary == nil {
		return
	}
	now := v.now()
	for i := -1; i < len(req.Extra); i++ {
		s := req.Secret
		if i >= 0 {
			s = req.Extra[i]
		}
		if e := v.Find(s); e != nil && e.Canary {
			v.canaryUsed(e, req, now)
		}
	}
}

// canaryUsed tells the Canary hook of a canary key's use, with copies of
// the entry and the request: the hook may keep them, and a request the
// hook never sees stays where its caller made it (on the stack of a
// forward-auth or verify handler: an allocation fewer on every call).
func (v *Verifier) canaryUsed(e *Entry, req *Request, now time.Time) {
	c, r := *e, *req
	v.Canary.CanaryUsed(&c, &r, now)
}

// Find returns the entry whose secret this is, without deciding or
// recording anything. It is for the URL tripwire, which must flag a key
// whatever its state.
func (v *Verifier) Find(secret string) *Entry {
	if !keyformat.ValidSecret(secret) {
		return nil
	}
	d := keyformat.Sum(secret)
	return v.Index.Lookup(&d)
}
