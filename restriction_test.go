package latchkey

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "203.0.113.7", want: "203.0.113.7/32"},
		{in: "203.0.113.77/24", want: "203.0.113.0/24"},
		{in: "2001:db8::1", want: "2001:db8::1/128"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "::ffff:203.0.113.7", want: "203.0.113.7/32"},
		{in: "::ffff:203.0.113.0/120", want: "203.0.113.0/24"},
		{in: " 10.0.0.0/8 ", want: "10.0.0.0/8"},
		{in: "10.0.0.0/33", wantErr: true},
		{in: "10.0.0", wantErr: true},
		{in: "fe80::1%eth0", wantErr: true},
		{in: "example.com", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePrefix(tt.in)
			if tt.wantErr {
				if err == nil || ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), "allowed_ips") {
					t.Fatalf("ParsePrefix(%q) = %v, %v; want an InvalidArgument naming allowed_ips", tt.in, p, err)
				}
				return
			}
			if err != nil || p.String() != tt.want {
				t.Fatalf("ParsePrefix(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
			}
		})
	}
}

func TestReferrerPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		ref     string
		want    bool
	}{
		{"https://*.example.com/*", "https://app.example.com/orders/1", true},
		{"https://*.example.com/*", "https://a.b.example.com/", true},
		{"https://*.example.com/*", "https://example.com/", false},
		{"https://*.example.com/*", "https://evilexample.com/", false},
		{"https://*.example.com/*", "https://app.example.com.evil.net/", false},
		{"https://*.example.com/*", "http://app.example.com/", false},
		{"https://*.example.com/*", "https://APP.Example.COM/x", true},
		// Same length as the pattern's host, equal up to a later byte: the
		// comparison must look at every byte, not stop at the first equal one.
		{"https://*.example.com/*", "https://app.examplf.com/", false},
		{"https://*.example.com/*", "https://app.exaMPLF.com/", false},
		{"https://app.example.com/*", "https://app.example.con/", false},
		{"https://app.example.com/*", "https://APP.EXAMPLE.CON/", false},
		{"https://app.example.com/*", "https://app.EXAMPLE.com/", true},
		{"HTTPS://app.example.com/*", "hTtPs://app.example.com/", true},
		{"https://app.example.com/*", "httpz://app.example.com/", false},
		{"https://*.example.com/*", "https://app.example.com:8443/x", true},
		{"https://*.example.com/*", "https://app.example.com./x", true},
		{"https://*.example.com/*", "https://good.example.com@evil.net/", false},
		{"https://*.example.com/*", "https://user:pw@app.example.com/", false},
		{"https://*.example.com/*", "", false},
		{"https://*.example.com/*", "app.example.com", false},
		{"https://*.example.com/*", "ftp://app.example.com/", false},
		{"https://app.example.com/orders/*", "https://app.example.com/orders/7?x=1", true},
		{"https://app.example.com/orders/*", "https://app.example.com/orders/", true},
		{"https://app.example.com/orders/*", "https://app.example.com/order", false},
		{"https://app.example.com/orders/*", "https://app.example.com/Orders/1", false},
		{"https://app.example.com/checkout", "https://app.example.com/checkout", true},
		{"https://app.example.com/checkout", "https://app.example.com/checkout/x", false},
		{"https://app.example.com/checkout", "https://app.example.com/checkout#top", true},
		{"https://app.example.com", "https://app.example.com", true},
		{"https://app.example.com", "https://app.example.com/any/path", true},
		{"https://app.example.com:8443/*", "https://app.example.com:8443/", true},
		{"https://app.example.com:8443/*", "https://app.example.com/", false},
		{"https://app.example.com:8443/*", "https://app.example.com:443/", false},
		{"*://app.example.com/*", "http://app.example.com/", true},
		{"*://app.example.com/*", "https://app.example.com/", true},
		{"https://*/*", "https://anything.net/", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.ref, func(t *testing.T) {
			p, err := ParseReferrerPattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match(tt.ref); got != tt.want {
				t.Errorf("Match(%q) = %v, want %v", tt.ref, got, tt.want)
			}
		})
	}
}

func TestReferrerPatternErrors(t *testing.T) {
	for _, in := range []string{
		"example.com", "https://app.*.example.com/", "https://*example.com/", "https://ex*ample.com/",
		"https:///", "https://user@example.com/", "https://example.com/a*b", "gopher://example.com/",
		"https://example.com:99999/", "https://example.com/?q=1", "https://exa mple.com/",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := ParseReferrerPattern(in)
			if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), in) {
				t.Errorf("ParseReferrerPattern(%q) error = %v; want InvalidArgument quoting the pattern", in, err)
			}
		})
	}
}

func TestValidateRestrictions(t *testing.T) {
	tests := []struct {
		name    string
		in      Restrictions
		want    Restrictions
		wantErr string
	}{
		{
			name: "normalises",
			in: Restrictions{AllowedIPs: []string{"10.1.2.3/8", "::ffff:1.2.3.4"},
				AndroidApps: []AndroidApp{{"com.example.app", "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"}},
				RateLimit:   &RateLimit{PerSecond: 5}},
			want: Restrictions{AllowedIPs: []string{"10.0.0.0/8", "1.2.3.4/32"},
				AndroidApps: []AndroidApp{{"com.example.app", "abcdef0123456789abcdef0123456789abcdef01"}},
				RateLimit:   &RateLimit{PerSecond: 5, Burst: 5}},
		},
		{name: "bad cidr", in: Restrictions{AllowedIPs: []string{"300.1.1.1"}}, wantErr: "allowed_ips"},
		{name: "wildcard mid host", in: Restrictions{AllowedReferrers: []string{"https://a.*.b/"}}, wantErr: "allowed_referrers"},
		{name: "bad package", in: Restrictions{AndroidApps: []AndroidApp{{"app", "00"}}}, wantErr: "package_name"},
		{name: "bad fingerprint", in: Restrictions{AndroidApps: []AndroidApp{{"com.a.b", "zz"}}}, wantErr: "sha1_fingerprint"},
		{name: "bad bundle", in: Restrictions{IOSBundleIDs: []string{"com example"}}, wantErr: "ios_bundle_ids"},
		{name: "bad scope", in: Restrictions{Scopes: []string{"a*b"}}, wantErr: "scopes"},
		{name: "empty rate", in: Restrictions{RateLimit: &RateLimit{}}, wantErr: "rate_limit"},
		{name: "negative rate", in: Restrictions{RateLimit: &RateLimit{PerSecond: -1}}, wantErr: "rate_limit"},
		{name: "NaN rate", in: Restrictions{RateLimit: &RateLimit{PerSecond: math.NaN()}}, wantErr: "rate_limit"},
		{name: "infinite rate", in: Restrictions{RateLimit: &RateLimit{PerSecond: math.Inf(1)}}, wantErr: "rate_limit"},
		{name: "too many", in: Restrictions{Scopes: make([]string, MaxRestrictionEntries+1)}, wantErr: "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.wantErr != "" {
				if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), tt.wantErr) {
					t.Fatalf("Validate() = %v; want InvalidArgument mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, tt.in); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestScopeAllows(t *testing.T) {
	tests := []struct {
		granted, required string
		want              bool
	}{
		{"shipments:read", "shipments:read", true},
		{"shipments:read", "shipments:write", false},
		{"shipments:*", "shipments:write", true},
		{"shipments:*", "shipment", false},
		{"*", "anything", true},
		{"shipments:read", "shipments:read:all", false},
	}
	for _, tt := range tests {
		if got := ScopeAllows(tt.granted, tt.required); got != tt.want {
			t.Errorf("ScopeAllows(%q, %q) = %v", tt.granted, tt.required, got)
		}
	}
}

func TestReferrerMatchDoesNotAllocate(t *testing.T) {
	p, _ := ParseReferrerPattern("https://*.example.com/orders/*")
	if n := testing.AllocsPerRun(100, func() { p.Match("https://app.example.com/orders/1?x") }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

// matchReference is ReferrerPattern.Match as it was before it was split
// into ParseReferrer and MatchReferrer: FuzzReferrerPattern holds the new
// one to it.
func (p *ReferrerPattern) matchReference(ref string) bool {
	scheme, rest, ok := cutString(ref, "://")
	if !ok {
		return false
	}
	switch {
	case equalFold(scheme, "https"):
		if p.Scheme == "http" {
			return false
		}
	case equalFold(scheme, "http"):
		if p.Scheme == "https" {
			return false
		}
	default:
		return false
	}
	authority, path := rest, "/"
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c == '/' || c == '?' || c == '#' {
			authority, path = rest[:i], rest[i:]
			break
		}
	}
	for i := 0; i < len(authority); i++ {
		if authority[i] == '@' {
			return false // userinfo: https://good.example.com@evil.example/
		}
	}
	host, port := authority, ""
	if i := lastByte(authority, ':'); i >= 0 && authority[len(authority)-1] != ']' {
		host, port = authority[:i], authority[i+1:]
	}
	if p.Port != "" && port != p.Port {
		return false
	}
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	if !p.AnyHost {
		if p.Wildcard {
			if len(host) <= len(p.Host)+1 || host[len(host)-len(p.Host)-1] != '.' || !equalFold(host[len(host)-len(p.Host):], p.Host) {
				return false
			}
		} else if !equalFold(host, p.Host) {
			return false
		}
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c == '?' || c == '#' {
			path = path[:i]
			break
		}
	}
	if path == "" {
		path = "/"
	}
	if p.PathPrefix {
		return len(path) >= len(p.Path) && path[:len(p.Path)] == p.Path
	}
	return path == p.Path
}

func FuzzReferrerPattern(f *testing.F) {
	f.Add("https://*.example.com/*", "https://a.example.com/x")
	f.Add("*://h/", "http://h")
	f.Add("https://h:80/p*", "https://u@h:80/p")
	// ParseReferrer's one pass: the scheme's case, a port, a trailing
	// dot, a bracketed address, a query or fragment right after the
	// authority, and a wildcard host that is the pattern's host itself.
	f.Add("https://*.example.org/", "HTTPS://WWW.SHOP.EXAMPLE.ORG./")
	f.Add("https://shop.example.com:8443/cart", "https://SHOP.example.com:8443/cart#x")
	f.Add("http://example.com", "Http://example.com")
	f.Add("https://*.example.com/", "https://example.com/")
	f.Add("*://*:8080/*", "http://[::1]:8080/x")
	f.Add("https://h/", "https://h?x=1")
	f.Add("https://h:80/", "https://h:80#f")
	f.Fuzz(func(t *testing.T, pattern, ref string) {
		p, err := ParseReferrerPattern(pattern)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("error code %s", ErrorCode(err))
			}
			return
		}
		matched := p.Match(ref)
		if want := p.matchReference(ref); matched != want {
			t.Fatalf("pattern %q, referrer %q: Match = %v, the reference says %v", pattern, ref, matched, want)
		}
		if !matched {
			return
		}
		_, rest, _ := strings.Cut(ref, "://")
		authority := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			authority = rest[:i]
		}
		if strings.Contains(authority, "@") {
			t.Fatalf("pattern %q matched %q, which has userinfo", pattern, ref)
		}
	})
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::1", "::ffff:1.2.3.4/128", "1.2.3.4/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
			t.Fatalf("ParsePrefix(%q) = %v: not a valid masked, unmapped prefix", s, p)
		}
		again, err := ParsePrefix(p.String())
		if err != nil || again != p {
			t.Fatalf("round trip of %v gave %v, %v", p, again, err)
		}
	})
}

func TestRestrictionsString(t *testing.T) {
	for _, tt := range []struct {
		r    Restrictions
		want string
	}{
		{Restrictions{}, "none"},
		{Restrictions{AllowedReferrers: []string{"https://a.example/"}, Scopes: []string{"s:r"}}, "1 referrer, 1 scope"},
		{Restrictions{AllowedIPs: []string{"10.0.0.0/8", "192.0.2.1"}, IOSBundleIDs: []string{"com.example.app"}}, "2 IP ranges, 1 app"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
	}
}

// cutString and lastByte are what matchReference was written with.
func cutString(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

func lastByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// BenchmarkReferrer parses a Referer value once and matches it against
// five patterns, the last of which allows it: what a key restricted to
// referrers costs a call (BenchmarkVerifyRestricted in internal/verify).
func BenchmarkReferrer(b *testing.B) {
	var ps []ReferrerPattern
	for _, s := range []string{"https://www.example.com/*", "https://*.example.org/", "http://localhost:8080/*", "*://shop.example.net/cart", "https://*.example.com/app/*"} {
		p, err := ParseReferrerPattern(s)
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
	}
	const ref = "https://api.example.com/app/page?x=1"
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := ParseReferrer(ref); !ok {
				b.Fatal("not parsed")
			}
		}
	})
	b.Run("match", func(b *testing.B) {
		r, _ := ParseReferrer(ref)
		b.ReportAllocs()
		for b.Loop() {
			i := 0
			for i < len(ps) && !ps[i].MatchReferrer(&r) {
				i++
			}
			if i != len(ps)-1 {
				b.Fatalf("matched by pattern %d, want the last", i)
			}
		}
	})
}
