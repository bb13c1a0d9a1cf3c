package verify

import (
	"encoding/binary"
	"fmt"
	mathrand "math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
	"golang.org/x/time/rate"
)

func TestIPSet(t *testing.T) {
	set := newIPSet([]string{"203.0.113.0/24", "198.51.100.7", "2001:db8::/32", "10.0.0.0/8", "10.1.0.0/16", "::1"})
	tests := []struct {
		ip   string
		want bool
	}{
		{"203.0.113.0", true},
		{"203.0.113.255", true},
		{"203.0.114.0", false},
		{"198.51.100.7", true},
		{"198.51.100.8", false},
		{"10.200.3.4", true},
		{"11.0.0.0", false},
		{"::ffff:203.0.113.9", true}, // IPv4-mapped IPv6 is the IPv4 address
		{"::ffff:198.51.100.8", false},
		{"2001:db8:ffff::1", true},
		{"2001:db9::1", false},
		{"::1", true},
		{"::2", false},
		{"0.0.0.0", false},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := set.contains(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("contains(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
	// An IPv6 range that spans the IPv4-mapped block lets no IPv4 client
	// in: ::/0 used to allow every IPv4 address.
	for _, cidr := range []string{"::/0", "::/64", "::ffff:0:0/95"} {
		if set := newIPSet([]string{cidr}); set.contains(netip.MustParseAddr("198.51.100.7")) {
			t.Errorf("IPv6 range %s contains an IPv4 address", cidr)
		}
	}
	if set := newIPSet([]string{"::/0"}); !set.contains(netip.MustParseAddr("2001:db8::1")) {
		t.Error("::/0 does not contain 2001:db8::1")
	}
	all := newIPSet([]string{"0.0.0.0/0", "::/0"})
	for _, ip := range []string{"1.2.3.4", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "255.255.255.255"} {
		if !all.contains(netip.MustParseAddr(ip)) {
			t.Errorf("0.0.0.0/0 + ::/0 does not contain %s", ip)
		}
	}
}

// TestAddrU128 holds addrU128's IPv4 shortcut to As16's bytes: an IPv4
// address reads as its ::ffff:0:0/96 form, so that it and that form match
// the same ranges and are the same client in whoOf.
func TestAddrU128(t *testing.T) {
	for _, s := range []string{"192.0.2.1", "0.0.0.0", "255.255.255.255", "::ffff:192.0.2.1", "::", "::1",
		"2001:db8::1", "fe80::1%eth0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""} {
		var a netip.Addr
		if s != "" {
			a = netip.MustParseAddr(s)
		}
		b := a.As16()
		want := u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
		if got := addrU128(a); got != want {
			t.Errorf("addrU128(%q) = %#x, want %#x", s, got, want)
		}
	}
	v4, mapped := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.1")
	if whoOf(v4, "ua") != whoOf(mapped, "ua") {
		t.Error("an IPv4 client and its IPv4-mapped form are different clients")
	}
	for _, other := range []string{"192.0.2.2", "::192.0.2.1", "2001:db8::1"} {
		if whoOf(v4, "ua") == whoOf(netip.MustParseAddr(other), "ua") {
			t.Errorf("192.0.2.1 and %s are the same client", other)
		}
	}
	if whoOf(v4, "ua") == whoOf(v4, "ub") || whoOf(netip.Addr{}, "ua") == whoOf(netip.IPv6Unspecified(), "ua") {
		t.Error("whoOf does not tell clients apart")
	}
}

// fixture is an index with one key per call to add, and a clock.
type fixture struct {
	t   *testing.T
	ix  *Index
	v   *Verifier
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, ix: NewIndex(), now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.v = New(f.ix, nil)
	f.v.Now = func() time.Time { return f.now }
	return f
}

func (f *fixture) add(app, key, report *latchkey.Restrictions) string {
	f.t.Helper()
	id, _ := keyformat.NewID()
	sec, err := keyformat.NewSecret()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range []*latchkey.Restrictions{app, key, report} {
		if err := r.Validate(); err != nil {
			f.t.Fatal(err)
		}
	}
	f.ix.Put(&latchkey.AccessKey{ID: id, Account: "default", Application: "app", Status: latchkey.StatusActive,
		SecretDigest: keyformat.Sum(sec), AppRestrictions: app, Restrictions: key, ReportOnly: report})
	return sec
}

func TestDecisionsForEachRestriction(t *testing.T) {
	f := newFixture(t)
	fp := "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
	r := &latchkey.Restrictions{
		AllowedIPs:       []string{"203.0.113.0/24", "2001:db8::/32"},
		AllowedReferrers: []string{"https://*.example.com/*"},
		Scopes:           []string{"shipments:read", "labels:*"},
	}
	sec := f.add(nil, r, nil)
	mob := f.add(nil, &latchkey.Restrictions{
		AndroidApps:  []latchkey.AndroidApp{{PackageName: "com.example.app", SHA1Fingerprint: fp}},
		IOSBundleIDs: []string{"com.example.ios"},
	}, nil)
	appOnly := f.add(&latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}}, &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.10"}}, nil)
	ok := func(req Request) Request {
		if req.IP == (netip.Addr{}) {
			req.IP = netip.MustParseAddr("203.0.113.5")
		}
		if req.Referrer == "" {
			req.Referrer = "https://shop.example.com/cart"
		}
		return req
	}
	tests := []struct {
		name string
		req  Request
		want latchkey.Code
	}{
		{"all pass", ok(Request{Secret: sec, Scope: "shipments:read"}), latchkey.CodeValid},
		{"no scope asked", ok(Request{Secret: sec}), latchkey.CodeValid},
		{"wildcard scope", ok(Request{Secret: sec, Scope: "labels:print"}), latchkey.CodeValid},
		{"ipv6 in range", ok(Request{Secret: sec, IP: netip.MustParseAddr("2001:db8::5")}), latchkey.CodeValid},
		{"ip outside", ok(Request{Secret: sec, IP: netip.MustParseAddr("198.51.100.1")}), latchkey.CodeIPNotAllowed},
		{"ip unknown", Request{Secret: sec, Referrer: "https://shop.example.com/"}, latchkey.CodeIPNotAllowed},
		{"referrer outside", ok(Request{Secret: sec, Referrer: "https://evil.net/"}), latchkey.CodeReferrerNotAllowed},
		{"scope denied", ok(Request{Secret: sec, Scope: "shipments:write"}), latchkey.CodeScopeDenied},
		{"ip checked before referrer", Request{Secret: sec, IP: netip.MustParseAddr("1.1.1.1"), Referrer: "https://evil.net/"}, latchkey.CodeIPNotAllowed},
		{"android ok", Request{Secret: mob, AndroidPackage: "com.example.app", AndroidCert: "abcdef0123456789abcdef0123456789abcdef01"}, latchkey.CodeValid},
		{"android cert colons", Request{Secret: mob, AndroidPackage: "com.example.app", AndroidCert: fp}, latchkey.CodeValid},
		{"android wrong cert", Request{Secret: mob, AndroidPackage: "com.example.app", AndroidCert: "00" + fp[2:]}, latchkey.CodeAppNotAllowed},
		{"android wrong package", Request{Secret: mob, AndroidPackage: "com.evil.app", AndroidCert: fp}, latchkey.CodeAppNotAllowed},
		{"ios ok", Request{Secret: mob, IOSBundleID: "com.example.ios"}, latchkey.CodeValid},
		{"ios wrong", Request{Secret: mob, IOSBundleID: "com.example.other"}, latchkey.CodeAppNotAllowed},
		{"no app identity", Request{Secret: mob}, latchkey.CodeAppNotAllowed},
		{"app and key both allow", Request{Secret: appOnly, IP: netip.MustParseAddr("192.0.2.10")}, latchkey.CodeValid},
		{"key narrows app", Request{Secret: appOnly, IP: netip.MustParseAddr("192.0.2.11")}, latchkey.CodeIPNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			if got := f.v.Verify(&req).Code; got != tt.want {
				t.Errorf("code = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRateLimitWithInjectedClock(t *testing.T) {
	f := newFixture(t)
	sec := f.add(nil, &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerSecond: 2, Burst: 3}}, nil)
	codes := func(n int) (out []latchkey.Code) {
		for range n {
			out = append(out, f.v.Verify(&Request{Secret: sec}).Code)
		}
		return out
	}
	got := codes(4)
	want := []latchkey.Code{latchkey.CodeValid, latchkey.CodeValid, latchkey.CodeValid, latchkey.CodeRateLimited}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("burst: got %v, want %v", got, want)
		}
	}
	res := f.v.Verify(&Request{Secret: sec})
	if res.Code != latchkey.CodeRateLimited || res.Rate.RetryAfter <= 0 || res.Rate.RetryAfter > 500*time.Millisecond {
		t.Fatalf("limited result = %+v; want RATE_LIMITED with retry in (0, 500ms]", res)
	}
	f.now = f.now.Add(500 * time.Millisecond) // one token back at 2/s
	if got := codes(2); got[0] != latchkey.CodeValid || got[1] != latchkey.CodeRateLimited {
		t.Fatalf("after 500ms: %v", got)
	}
	f.now = f.now.Add(10 * time.Second)
	if r := f.v.Verify(&Request{Secret: sec}); r.Code != latchkey.CodeValid || r.Rate.Limit != 3 || r.Rate.Remaining != 2 {
		t.Fatalf("after refill: %+v", r)
	}
}

func TestRateLimitPerMinute(t *testing.T) {
	f := newFixture(t)
	sec := f.add(nil, &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerMinute: 3}}, nil)
	for i := range 3 {
		if c := f.v.Verify(&Request{Secret: sec}).Code; c != latchkey.CodeValid {
			t.Fatalf("call %d: %s", i, c)
		}
	}
	r := f.v.Verify(&Request{Secret: sec})
	if r.Code != latchkey.CodeRateLimited || r.Rate.Window != time.Minute || r.Rate.RetryAfter < 19*time.Second {
		t.Fatalf("4th call: %+v", r)
	}
	f.now = f.now.Add(20 * time.Second)
	if c := f.v.Verify(&Request{Secret: sec}).Code; c != latchkey.CodeValid {
		t.Fatalf("after 20s: %s", c)
	}
}

func TestRefusedCallsDoNotUseTokens(t *testing.T) {
	f := newFixture(t)
	sec := f.add(nil, &latchkey.Restrictions{Scopes: []string{"a"}, RateLimit: &latchkey.RateLimit{PerSecond: 1, Burst: 1}}, nil)
	for range 5 {
		if c := f.v.Verify(&Request{Secret: sec, Scope: "b"}).Code; c != latchkey.CodeScopeDenied {
			t.Fatalf("code %s", c)
		}
	}
	if c := f.v.Verify(&Request{Secret: sec, Scope: "a"}).Code; c != latchkey.CodeValid {
		t.Fatalf("valid call after refused ones: %s", c)
	}
}

func TestReportOnlyRecordsWithoutDenying(t *testing.T) {
	f := newFixture(t)
	sec := f.add(nil, nil, &latchkey.Restrictions{AllowedIPs: []string{"203.0.113.0/24"}})
	res := f.v.Verify(&Request{Secret: sec, IP: netip.MustParseAddr("198.51.100.9"), UserAgent: "cron/1"})
	if res.Code != latchkey.CodeValid || res.WouldDeny != latchkey.CodeIPNotAllowed {
		t.Fatalf("result = %+v; want VALID with would-deny IP_NOT_ALLOWED", res)
	}
	res = f.v.Verify(&Request{Secret: sec, IP: netip.MustParseAddr("203.0.113.9")})
	if res.Code != latchkey.CodeValid || res.WouldDeny != "" {
		t.Fatalf("allowed address: %+v", res)
	}
	u := f.ix.PendingUsage(res.Entry.ID)
	if u.Uses != 2 || u.WouldDeny != 1 || u.LastWouldDeny == nil || u.LastWouldDeny.IP != "198.51.100.9" ||
		u.LastWouldDeny.Reason != latchkey.CodeIPNotAllowed || u.LastWouldDeny.UserAgent != "cron/1" {
		t.Fatalf("pending usage = %+v, last would deny %+v", u, u.LastWouldDeny)
	}
}

func TestGuardThrottlesOnlyTheOffendingAddress(t *testing.T) {
	f := newFixture(t)
	f.v.Guard = NewGuard(3, 60)
	good := f.add(nil, nil, nil)
	bad := netip.MustParseAddr("198.51.100.66")
	other := netip.MustParseAddr("203.0.113.1")
	unknown, _ := keyformat.NewSecret()
	for i := range 3 {
		if c := f.v.Verify(&Request{Secret: unknown, IP: bad}).Code; c != latchkey.CodeNotFound {
			t.Fatalf("attempt %d: %s", i, c)
		}
	}
	r := f.v.Verify(&Request{Secret: unknown, IP: bad})
	if r.Code != latchkey.CodeThrottled || r.RetryAfter <= 0 || r.RetryAfter > time.Second {
		t.Fatalf("4th attempt: %+v", r)
	}
	if c := f.v.Verify(&Request{Secret: good, IP: other}).Code; c != latchkey.CodeValid {
		t.Fatalf("valid key from another address: %s", c)
	}
	if c := f.v.Verify(&Request{Secret: "garbage", IP: other}).Code; c != latchkey.CodeMalformed {
		t.Fatalf("other address, malformed: %s", c)
	}
	f.now = f.now.Add(time.Second) // 60/min refills one a second
	if c := f.v.Verify(&Request{Secret: good, IP: bad}).Code; c != latchkey.CodeValid {
		t.Fatalf("after refill: %s", c)
	}
	f.now = f.now.Add(time.Hour)
	f.v.Guard.Sweep(f.now)
	if n := f.v.Guard.n.Load(); n != 0 {
		t.Errorf("after sweep %d addresses remembered", n)
	}
}

// TestGuardCountsIPv6ByNetwork: the addresses of one /64 share a budget
// (a subscriber may send from any of them), another /64 keeps its own, and
// an IPv4-mapped address is its IPv4 address.
func TestGuardCountsIPv6ByNetwork(t *testing.T) {
	f := newFixture(t)
	f.v.Guard = NewGuard(3, 60)
	good := f.add(nil, nil, nil)
	unknown, _ := keyformat.NewSecret()
	for i, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:ffff"} {
		if c := f.v.Verify(&Request{Secret: unknown, IP: netip.MustParseAddr(a)}).Code; c != latchkey.CodeNotFound {
			t.Fatalf("attempt %d from %s: %s", i, a, c)
		}
	}
	for _, a := range []string{"2001:db8:1:2::99", "2001:db8:1:2:8000::1%eth0"} {
		if c := f.v.Verify(&Request{Secret: good, IP: netip.MustParseAddr(a)}).Code; c != latchkey.CodeThrottled {
			t.Errorf("valid key from %s, in the /64 that failed 3 times: %s, want THROTTLED", a, c)
		}
	}
	for _, a := range []string{"2001:db8:1:3::1", "2001:db8:1:1:ffff:ffff:ffff:ffff"} {
		if c := f.v.Verify(&Request{Secret: good, IP: netip.MustParseAddr(a)}).Code; c != latchkey.CodeValid {
			t.Errorf("valid key from %s, another /64: %s", a, c)
		}
	}
	if n := f.v.Guard.n.Load(); n != 1 {
		t.Errorf("the guard counts %d addresses for one /64", n)
	}
	for range 3 {
		f.v.Verify(&Request{Secret: unknown, IP: netip.MustParseAddr("::ffff:198.51.100.66")})
	}
	if c := f.v.Verify(&Request{Secret: good, IP: netip.MustParseAddr("198.51.100.66")}).Code; c != latchkey.CodeThrottled {
		t.Errorf("valid key from 198.51.100.66 after 3 failures from ::ffff:198.51.100.66: %s", c)
	}
}

// TestGuardFullTable: with the table full, a new address is counted only
// after a sweep makes room, and a flood of new addresses sweeps at most
// once a fullSweepSpacing (each sweep walks the whole table under the
// lock every verification may need).
func TestGuardFullTable(t *testing.T) {
	g := NewGuard(3, 60) // 3 failures, refilling one a second
	g.MaxAddresses = 2
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	g.fail(a, timeAt(at(0)))
	g.fail(b, timeAt(at(0))) // the table is full; a and b are full again at 1s
	counted := func(s string) bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.addrs[guardKey(netip.MustParseAddr(s))] != nil
	}
	g.fail(netip.MustParseAddr("192.0.2.3"), timeAt(at(500*time.Millisecond))) // sweeps: nothing to forget yet
	if counted("192.0.2.3") || !counted("192.0.2.1") || !counted("192.0.2.2") {
		t.Fatal("at 0.5s: a new address was counted in a full table, or a counted one forgotten")
	}
	g.fail(netip.MustParseAddr("192.0.2.4"), timeAt(at(1200*time.Millisecond))) // a and b are full again, but the last sweep was 0.7s ago
	if counted("192.0.2.4") || !counted("192.0.2.1") {
		t.Fatal("at 1.2s: the table was swept again 0.7s after the last sweep")
	}
	g.fail(netip.MustParseAddr("192.0.2.5"), timeAt(at(1600*time.Millisecond))) // 1.1s after the last sweep: sweeps, forgets a and b
	if !counted("192.0.2.5") || counted("192.0.2.1") || counted("192.0.2.2") || g.n.Load() != 1 {
		t.Fatalf("at 1.6s: the sweep did not make room (%d counted)", g.n.Load())
	}
}

// TestGuardSweepKeepsThrottled: a sweep that forgets some addresses swaps
// in a new bitmap; a throttled address's bit must be in it, or its calls
// would pass without the lock.
func TestGuardSweepKeepsThrottled(t *testing.T) {
	g := NewGuard(3, 60)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	bad, once := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::1")
	g.fail(once, timeAt(t0))
	for range 3 {
		g.fail(bad, timeAt(t0.Add(1500*time.Millisecond)))
	}
	now := t0.Add(1600 * time.Millisecond) // once is full again; bad has 0.1 of a token
	old := g.seen.Load()
	g.Sweep(now)
	if g.seen.Load() == old || g.n.Load() != 1 {
		t.Fatalf("the sweep forgot %d addresses and kept the bitmap", 2-g.n.Load())
	}
	if g.seen.Load().has(guardKey(once)) {
		t.Error("the forgotten address's bit is still set")
	}
	if !g.seen.Load().has(guardKey(bad)) || g.blocked(bad, timeAt(now)) <= 0 {
		t.Error("the throttled address is no longer throttled after a sweep that forgot another")
	}
}

func TestRestrictedVerifyDoesNotAllocate(t *testing.T) {
	f := newFixture(t)
	sec := f.add(nil, &latchkey.Restrictions{
		AllowedIPs:       []string{"10.0.0.0/8", "192.168.0.0/16", "203.0.113.0/24", "2001:db8::/32", "198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.6"},
		AllowedReferrers: []string{"https://a.example.com/*", "https://b.example.com/*", "https://*.example.org/*", "https://c.example.com/x/*", "https://d.example.com/"},
		Scopes:           []string{"shipments:read", "labels:*"},
		RateLimit:        &latchkey.RateLimit{PerSecond: 1e6, Burst: 1e6},
	}, nil)
	req := &Request{Secret: sec, IP: netip.MustParseAddr("203.0.113.7"), Referrer: "https://x.example.org/p", Scope: "labels:print"}
	if c := f.v.Verify(req).Code; c != latchkey.CodeValid {
		t.Fatalf("code %s", c)
	}
	if n := testing.AllocsPerRun(200, func() { f.v.Verify(req) }); n != 0 {
		t.Errorf("restricted Verify allocates %v times", n)
	}
}

// TestLimiterMatchesTokenBucket: the GCRA limiter decides as
// golang.org/x/time/rate's token buckets do (the limiter it replaced), for
// every kind of limit and calls at random times, and reports the same
// remaining tokens.
func TestLimiterMatchesTokenBucket(t *testing.T) {
	limits := []latchkey.RateLimit{
		{PerSecond: 5, Burst: 10},
		{PerSecond: 0.5},
		{PerMinute: 30},
		{PerSecond: 100, Burst: 3, PerMinute: 120},
	}
	for _, cfg := range limits {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			l := newLimiter(&cfg)
			var sec, min *rate.Limiter
			if cfg.PerSecond > 0 {
				sec = rate.NewLimiter(rate.Limit(cfg.PerSecond), max(cfg.Burst, 1))
			}
			if cfg.PerMinute > 0 {
				min = rate.NewLimiter(rate.Limit(float64(cfg.PerMinute)/60), cfg.PerMinute)
			}
			rng := mathrand.New(mathrand.NewPCG(1, 2))
			now := time.Unix(1_700_000_000, 0)
			allowed := 0
			for i := range 5000 {
				now = now.Add(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
				ok, info := l.allow(now)
				want := (sec == nil || sec.TokensAt(now) >= 1) && (min == nil || min.TokensAt(now) >= 1)
				if want {
					if sec != nil {
						sec.AllowN(now, 1)
					}
					if min != nil {
						min.AllowN(now, 1)
					}
					allowed++
				}
				if ok != want {
					t.Fatalf("call %d at +%v: allowed %v, the token buckets say %v", i, now.Sub(time.Unix(1_700_000_000, 0)), ok, want)
				}
				tight := sec
				if tight == nil || (min != nil && info.Window == time.Minute) {
					tight = min
				}
				if got, want := info.Remaining, int(max(tight.TokensAt(now), 0)); got != want && got != want-1 && got != want+1 {
					t.Fatalf("call %d: %d remaining, the token bucket has %d", i, got, want)
				}
				// A refusal's Retry-After is when the bucket that refused
				// has a token again: not sooner, and not a millisecond later.
				if !ok {
					if got := tight.TokensAt(now.Add(info.RetryAfter)); got < 0.999 {
						t.Fatalf("call %d: retry after %v, the token bucket has %.4f tokens then", i, info.RetryAfter, got)
					}
					if got := tight.TokensAt(now.Add(info.RetryAfter - time.Millisecond)); got >= 1 {
						t.Fatalf("call %d: retry after %v, the token bucket has a token a millisecond sooner", i, info.RetryAfter)
					}
				}
			}
			if allowed == 0 || allowed == 5000 {
				t.Fatalf("%d of 5000 calls allowed: the test does not exercise the limit", allowed)
			}
		})
	}
}
