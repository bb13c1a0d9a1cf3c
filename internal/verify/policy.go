package verify

import (
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// policy is a compiled set of restrictions: built once when a key is
// loaded, checked on every call without allocating.
type policy struct {
	limitIPs  bool  // false: any address
	limitRefs bool  // false: any referrer
	ips       ipSet // held in the policy: one pointer fewer to chase
	referrers []latchkey.ReferrerPattern
	android   []latchkey.AndroidApp
	ios       []string
	scopes    []string
	rate      *latchkey.RateLimit
}

func compile(r *latchkey.Restrictions) *policy {
	if r.Empty() {
		return nil
	}
	p := &policy{android: r.AndroidApps, ios: r.IOSBundleIDs, scopes: r.Scopes, rate: r.RateLimit}
	if len(r.AllowedIPs) > 0 {
		p.limitIPs, p.ips = true, newIPSet(r.AllowedIPs)
	}
	if len(r.AllowedReferrers) > 0 {
		// Restrictions are validated before they are stored; a pattern
		// that no longer parses is left out, matching nothing rather than
		// everything, and a key whose patterns all fail allows no referrer.
		var ps []latchkey.ReferrerPattern
		for _, s := range r.AllowedReferrers {
			if rp, err := latchkey.ParseReferrerPattern(s); err == nil {
				ps = append(ps, rp)
			}
		}
		p.limitRefs, p.referrers = true, ps
	}
	return p
}

// check returns CodeValid or the code of the first restriction the call
// fails, in the documented order: IP, referrer, app, scope.
func (p *policy) check(req *Request) latchkey.Code {
	if p == nil {
		return latchkey.CodeValid
	}
	if p.limitIPs && (!req.IP.IsValid() || !p.ips.contains(req.IP)) {
		return latchkey.CodeIPNotAllowed
	}
	if p.limitRefs {
		// Parsed once, matched against every pattern.
		var ref latchkey.Referrer
		ok := ref.Parse(req.Referrer)
		if ok {
			ok = false
			for i := range p.referrers {
				if p.referrers[i].MatchReferrer(&ref) {
					ok = true
					break
				}
			}
		}
		if !ok {
			return latchkey.CodeReferrerNotAllowed
		}
	}
	if len(p.android) > 0 || len(p.ios) > 0 {
		if !p.appAllowed(req) {
			return latchkey.CodeAppNotAllowed
		}
	}
	if len(p.scopes) > 0 && req.Scope != "" {
		ok := false
		for _, s := range p.scopes {
			if latchkey.ScopeAllows(s, req.Scope) {
				ok = true
				break
			}
		}
		if !ok {
			return latchkey.CodeScopeDenied
		}
	}
	return latchkey.CodeValid
}

func (p *policy) appAllowed(req *Request) bool {
	if req.AndroidPackage != "" {
		for _, a := range p.android {
			if a.PackageName == req.AndroidPackage && fingerprintEqual(a.SHA1Fingerprint, req.AndroidCert) {
				return true
			}
		}
	}
	if req.IOSBundleID != "" {
		for _, b := range p.ios {
			if b == req.IOSBundleID {
				return true
			}
		}
	}
	return false
}

// fingerprintEqual compares a normalised fingerprint (40 lower-case hex)
// with one as sent (any case, colons allowed) without allocating.
func fingerprintEqual(norm, sent string) bool {
	j := 0
	for i := 0; i < len(sent); i++ {
		c := sent[i]
		if c == ':' {
			continue
		}
		if c >= 'A' && c <= 'F' {
			c += 'a' - 'A'
		}
		if j >= len(norm) || norm[j] != c {
			return false
		}
		j++
	}
	return j == len(norm)
}

// ipSet holds CIDR ranges as sorted, merged [lo, hi] intervals, searched
// by binary search: IPv4 ranges as 32-bit addresses, IPv6 ranges as
// 128-bit ones. The two are kept apart: an IPv6 range such as ::/0 or
// ::/64 spans the IPv4-mapped block ::ffff:0:0/96, but it is an IPv6
// range and must not let IPv4 clients in.
type ipSet struct {
	v4 []v4Range // 8 bytes a range: a key's ranges in a cache line or two
	v6 []ipRange
}

// v4Range is an IPv4 range [lo, hi] as two big-endian words.
type v4Range struct{ lo, hi uint32 }

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

type ipRange struct{ lo, hi u128 }

// mix hashes a into 64 bits: the client address's part of whoOf's
// fingerprint, and the guard's bitmap index.
func (a u128) mix() uint64 { return (a.hi*0x9e3779b97f4a7c15 ^ a.lo) * 0xbf58476d1ce4e5b9 }

// addrU128 is a's 16 bytes (As16: an IPv4 address mapped into
// ::ffff:0:0/96) as two big-endian words. An IPv4 address, the usual
// client, is read through As4: As16 writes its result as two 8-byte
// stores that the 16-byte copy of the array the compiler makes next
// cannot take from the store buffer, a stall of some 4 ns on the hot path
// (whoOf); As4's one 4-byte store and copy do not stall.
func addrU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func newIPSet(cidrs []string) ipSet {
	var v4, v6 []ipRange
	for _, c := range cidrs {
		p, err := latchkey.ParsePrefix(c)
		if err != nil {
			continue // validated before storing; skip rather than widen
		}
		bits := p.Bits()
		if p.Addr().Is4() {
			bits += 96
		}
		lo := addrU128(netip.AddrFrom16(p.Addr().As16()))
		hi := lo
		host := 128 - bits
		switch {
		case host >= 64:
			hi.lo = ^uint64(0)
			if host == 128 {
				hi.hi = ^uint64(0)
			} else {
				hi.hi |= (uint64(1) << (host - 64)) - 1
			}
		case host > 0:
			hi.lo |= (uint64(1) << host) - 1
		}
		if p.Addr().Is4() {
			v4 = append(v4, ipRange{lo, hi})
		} else {
			v6 = append(v6, ipRange{lo, hi})
		}
	}
	v4 = mergeRanges(v4)
	set := ipSet{v4: make([]v4Range, len(v4)), v6: mergeRanges(v6)}
	for i, r := range v4 { // in ::ffff:0:0/96: the address is the low 32 bits
		set.v4[i] = v4Range{uint32(r.lo.lo), uint32(r.hi.lo)}
	}
	return set
}

// mergeRanges sorts ranges and merges those that overlap or touch.
func mergeRanges(rs []ipRange) []ipRange {
	slices.SortFunc(rs, func(a, b ipRange) int {
		if a.lo.less(b.lo) {
			return -1
		} else if b.lo.less(a.lo) {
			return 1
		}
		return 0
	})
	var merged []ipRange
	for _, r := range rs {
		if n := len(merged); n > 0 && !merged[n-1].hi.less(r.lo) {
			if merged[n-1].hi.less(r.hi) {
				merged[n-1].hi = r.hi
			}
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

func (s *ipSet) contains(a netip.Addr) bool {
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		// first range with lo > x, then check the one before it
		i, j := 0, len(s.v4)
		for i < j {
			h := int(uint(i+j) >> 1)
			if x < s.v4[h].lo {
				j = h
			} else {
				i = h + 1
			}
		}
		return i > 0 && x <= s.v4[i-1].hi
	}
	ranges := s.v6
	x := addrU128(a)
	i, j := 0, len(ranges)
	for i < j {
		h := int(uint(i+j) >> 1)
		if x.less(ranges[h].lo) {
			j = h
		} else {
			i = h + 1
		}
	}
	return i > 0 && !ranges[i-1].hi.less(x)
}

// limiter enforces a RateLimit for one key: a per-second bucket and a
// per-minute bucket, both of which must have a token. The buckets live in
// the limiter (no pointers to chase on the hot path); a bucket whose
// interval is 0 is not configured.
type limiter struct {
	cfg latchkey.RateLimit
	mu  sync.Mutex
	sec bucket
	min bucket
}

// bucket is a token bucket kept as the generic cell rate algorithm (GCRA)
// keeps it: one time, the theoretical arrival time (tat) of the next call
// at the steady rate; the bucket holds burst tokens when tat is at or
// before now, and one token less for each interval tat is ahead of now.
// It starts full. All of it is integer nanoseconds: a token is interval
// nanoseconds of room.
type bucket struct {
	interval int64 // nanoseconds per token; 0: no such bucket
	burst    int64
	tat      int64 // Unix nanoseconds
}

func newBucket(perSecond float64, burst int) bucket {
	return bucket{interval: max(int64(math.Ceil(float64(time.Second)/perSecond)), 1), burst: int64(max(burst, 1))}
}

func (b *bucket) on() bool { return b.interval != 0 }

// room is how much the bucket holds now, in nanoseconds: a call may pass
// when it is at least one interval. It may be negative after charge.
func (b *bucket) room(now int64) int64 { return now + b.burst*b.interval - max(b.tat, now) }

// take uses a token.
func (b *bucket) take(now int64) { b.tat = max(b.tat, now) + b.interval }

func newLimiter(cfg *latchkey.RateLimit) *limiter {
	if cfg == nil {
		return nil
	}
	l := &limiter{cfg: *cfg}
	if cfg.PerSecond > 0 {
		l.sec = newBucket(cfg.PerSecond, cfg.Burst)
	}
	if cfg.PerMinute > 0 {
		l.min = newBucket(float64(cfg.PerMinute)/60, cfg.PerMinute)
	}
	return l
}

// RateInfo describes the bucket that limits a key, for RateLimit-* headers.
type RateInfo struct {
	Limit      int           // requests per window
	Window     time.Duration // 1s or 1m
	Remaining  int
	RetryAfter time.Duration // > 0 when limited
}

// charge takes a token from every bucket for a call the shared store
// allowed, so that if the store fails later, the fallback to this
// replica's buckets starts from what this replica has granted in the
// window instead of from full buckets. A bucket never goes more than
// empty: the store, not this replica, decided the call.
func (l *limiter) charge(at time.Time) {
	now := at.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range [...]*bucket{&l.sec, &l.min} {
		if b.on() {
			b.tat = min(max(b.tat, now)+b.interval, now+b.burst*b.interval)
		}
	}
}

// allow takes a token from every bucket, or none if any is empty.
func (l *limiter) allow(at time.Time) (bool, RateInfo) {
	now := at.UnixNano()
	l.mu.Lock()
	sec, mn := l.sec.on(), l.min.on()
	okSec := !sec || l.sec.room(now) >= l.sec.interval
	okMin := !mn || l.min.room(now) >= l.min.interval
	if okSec && okMin {
		if sec {
			l.sec.take(now)
		}
		if mn {
			l.min.take(now)
		}
	}
	// report the tighter bucket
	info := RateInfo{}
	if sec {
		r := l.sec.room(now)
		info = RateInfo{Limit: int(l.sec.burst), Window: time.Second, Remaining: int(max(r, 0) / l.sec.interval)}
		if !okSec {
			info.RetryAfter = time.Duration(l.sec.interval - r)
		}
	}
	if mn {
		r := l.min.room(now)
		// One division: a negative room (!okMin) reports 0 remaining.
		if left := int(max(r, 0) / l.min.interval); !sec || !okMin || left < info.Remaining {
			info = RateInfo{Limit: l.cfg.PerMinute, Window: time.Minute, Remaining: left}
			if !okMin {
				info.RetryAfter = time.Duration(l.min.interval - r)
			}
		}
	}
	l.mu.Unlock()
	if !(okSec && okMin) && info.RetryAfter <= 0 {
		info.RetryAfter = time.Millisecond
	}
	return okSec && okMin, info
}
