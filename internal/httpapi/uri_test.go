package httpapi

import (
	"net/url"
	"testing"

	"github.com/latchkey/latchkey"
)

// FuzzJudge: judging any method and request target never panics; a call it
// accepts needs the same scope under every reading of its path, and its
// canonical form (what the proxy forwards) is judged the same again.
func FuzzJudge(f *testing.F) {
	for _, s := range []string{"/shipments/42", "/%61dmin/users", "/shipments/../admin/x", "//admin", "/a%2Fb?c=%41",
		"http://h/admin?q", "*", "", "/a b?c#d", "/\x00?x", "/ADMIN/x", "/admin"} {
		f.Add("GET", s, uint8(0))
	}
	var rules []ScopeRule
	for _, r := range []string{"GET /shipments/* shipments:read", "POST /shipments/* shipments:write", "* /admin/* admin:all", "GET /Public public"} {
		sr, err := ParseScopeRule(r)
		if err != nil {
			f.Fatal(err)
		}
		rules = append(rules, sr)
	}
	f.Fuzz(func(t *testing.T, method, uri string, relax uint8) {
		s := &Server{ScopeRules: rules, PathRelax: latchkey.PathRelax(relax) & (latchkey.RelaxEncodedSlash | latchkey.RelaxSemicolon | latchkey.RelaxPercent)}
		scope, tgt, code := s.judge(method, uri)
		if code != "" {
			if code != latchkey.CodeAmbiguousPath {
				t.Fatalf("judge(%q, %q): code %s", method, uri, code)
			}
			return
		}
		judged, _ := latchkey.CanonicalMethod(method)
		for _, p := range []string{tgt.Path.Path, tgt.Path.Decoded, tgt.Path.Segmented} {
			if got := ScopeFor(rules, judged, p); got != scope {
				t.Fatalf("judge(%q, %q) = %q, but reading %q needs %q", method, uri, scope, p, got)
			}
		}
		again := tgt.Path.Escaped
		if tgt.RawQuery != "" {
			again += "?" + tgt.RawQuery
		}
		scope2, tgt2, code2 := s.judge(tgt.Method, again)
		if code2 != "" || scope2 != scope || tgt2.Path.Escaped != tgt.Path.Escaped || tgt2.Method != tgt.Method {
			t.Fatalf("judge(%q, %q) = %q %+v; its canonical form %q judged %q %+v %s", method, uri, scope, tgt, again, scope2, tgt2, code2)
		}
		if u, err := url.ParseRequestURI(tgt.Path.Escaped); err != nil || u.EscapedPath() != tgt.Path.Escaped {
			t.Fatalf("canonical path %q of %q does not parse as itself: %v", tgt.Path.Escaped, uri, err)
		}
	})
}
