package verify

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/latchkey/latchkey"
)

// FuzzRestrictions feeds restriction documents, as a request body carries
// them, through validation and compilation, then checks a call against the
// compiled policy. Validation must answer InvalidArgument or normalise the
// document so that a second pass changes nothing; the compiled IP set and
// referrer list must decide exactly as the plain definitions do (any listed
// range contains the address; any pattern matches the referrer), with an
// IPv4 address never inside an IPv6 range.
func FuzzRestrictions(f *testing.F) {
	f.Add([]byte(`{"allowed_ips":["203.0.113.0/24","2001:db8::/32"]}`), "203.0.113.9", "", "")
	f.Add([]byte(`{"allowed_ips":["10.0.0.0/8","10.1.0.0/16","::1"]}`), "::ffff:10.1.2.3", "", "")
	f.Add([]byte(`{"allowed_ips":["0.0.0.0/0"]}`), "2001:db8::1", "", "")
	f.Add([]byte(`{"allowed_referrers":["https://*.example.com/*"]}`), "", "https://a.example.com/x", "")
	f.Add([]byte(`{"allowed_referrers":["*://h:8080/p"]}`), "", "http://h:8080/p?q", "")
	f.Add([]byte(`{"scopes":["shipments:*"],"rate_limit":{"per_second":1,"burst":2}}`), "", "", "shipments:read")
	f.Add([]byte(`{"android_apps":[{"package_name":"com.example.a","sha1_fingerprint":"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"}],"ios_bundle_ids":["com.example.a"]}`), "", "", "")
	f.Fuzz(func(t *testing.T, doc []byte, ip, referrer, scope string) {
		var r latchkey.Restrictions
		if json.Unmarshal(doc, &r) != nil {
			return
		}
		if err := r.Validate(); err != nil {
			if latchkey.ErrorCode(err) != latchkey.EINVALID {
				t.Fatalf("Validate: code %s: %v", latchkey.ErrorCode(err), err)
			}
			return
		}
		once, _ := json.Marshal(&r)
		var again latchkey.Restrictions
		if err := json.Unmarshal(once, &again); err != nil {
			t.Fatalf("valid restrictions do not round-trip through JSON: %v", err)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("normalised restrictions %s no longer validate: %v", once, err)
		}
		if twice, _ := json.Marshal(&again); string(twice) != string(once) {
			t.Fatalf("validation is not idempotent:\n%s\n%s", once, twice)
		}

		req := &Request{Referrer: referrer, Scope: scope}
		if a, err := netip.ParseAddr(ip); err == nil {
			req.IP = a.Unmap()
		}
		p := compile(&r)
		code := p.check(req) // must not panic, whatever the request
		if p == nil {
			if code != latchkey.CodeValid {
				t.Fatalf("no restrictions, code %s", code)
			}
			return
		}
		if len(r.AllowedIPs) > 0 {
			want := false
			for _, s := range r.AllowedIPs {
				pfx, err := latchkey.ParsePrefix(s)
				if err != nil {
					t.Fatalf("validated range %q does not parse: %v", s, err)
				}
				if req.IP.IsValid() && pfx.Contains(req.IP) {
					want = true
				}
			}
			if got := req.IP.IsValid() && p.ips.contains(req.IP); got != want {
				t.Fatalf("IP %s in %v: compiled set says %v, the ranges say %v", req.IP, r.AllowedIPs, got, want)
			}
		}
		if len(r.AllowedReferrers) > 0 {
			want := false
			for _, s := range r.AllowedReferrers {
				rp, err := latchkey.ParseReferrerPattern(s)
				if err != nil {
					t.Fatalf("validated pattern %q does not parse: %v", s, err)
				}
				if rp.Match(referrer) {
					want = true
				}
			}
			got := false
			for i := range p.referrers {
				if p.referrers[i].Match(referrer) {
					got = true
				}
			}
			if got != want {
				t.Fatalf("referrer %q against %v: compiled %v, patterns %v", referrer, r.AllowedReferrers, got, want)
			}
		}
	})
}
