package latchkey_test

import (
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

// The variants come from RFC 3986 (sections 2.1-2.4 on escapes, 5.2.4 on
// dot segments, 6.2.2 on normalisation) and from gateway advisories on
// path confusion: encoded and double-encoded dots and slashes, backslashes
// read as slashes (IIS, some Java servers), ";" path parameters dropped by
// Tomcat and Jetty ("/..;/"), NUL and CR/LF injection, overlong and
// invalid UTF-8, and merged slashes (nginx merge_slashes).
func TestCanonicalizePath(t *testing.T) {
	tests := []struct {
		name, raw                   string
		relax                       latchkey.PathRelax
		path, escaped, decoded, seg string // seg "" means path
		err                         string // part of the refusal's message
	}{
		{name: "plain", raw: "/shipments/42", path: "/shipments/42"},
		{name: "root", raw: "/", path: "/"},
		{name: "trailing slash kept", raw: "/admin/", path: "/admin/"},
		{name: "sub-delims and colon stay raw", raw: "/v1/a:b@c!$&'()*+,=", path: "/v1/a:b@c!$&'()*+,="},
		{name: "dotted name is not a dot segment", raw: "/a/.well-known/..b/c.", path: "/a/.well-known/..b/c."},
		{name: "encoded unreserved", raw: "/%61dmin/users", path: "/admin/users", escaped: "/admin/users", decoded: "/admin/users"},
		{name: "encoded unreserved, lower-case hex", raw: "/%7euser", path: "/~user", escaped: "/~user", decoded: "/~user"},
		{name: "encoded reserved stays encoded", raw: "/a%2Bb/c%3fd", path: "/a+b/c?d", escaped: "/a%2Bb/c%3Fd", decoded: "/a+b/c?d"},
		{name: "space and non-ASCII", raw: "/caf%C3%A9/a%20b", path: "/café/a b", escaped: "/caf%C3%A9/a%20b", decoded: "/café/a b"},
		{name: "raw non-ASCII is escaped", raw: "/café", path: "/café", escaped: "/caf%C3%A9", decoded: "/café"},
		{name: "raw characters a path may not hold", raw: `/a"b<c>{d}|e^f` + "`", path: `/a"b<c>{d}|e^f` + "`", escaped: "/a%22b%3Cc%3E%7Bd%7D%7Ce%5Ef%60", decoded: `/a"b<c>{d}|e^f` + "`"},
		{name: "dot segment", raw: "/a/./b", path: "/a/b", escaped: "/a/b", decoded: "/a/./b"},
		{name: "dot-dot segment", raw: "/shipments/../admin/users", path: "/admin/users", escaped: "/admin/users", decoded: "/shipments/../admin/users"},
		{name: "dot-dot above the root", raw: "/../../admin", path: "/admin", escaped: "/admin", decoded: "/../../admin"},
		{name: "trailing dot-dot", raw: "/a/b/..", path: "/a/", escaped: "/a/", decoded: "/a/b/.."},
		{name: "trailing dot", raw: "/a/b/.", path: "/a/b/", escaped: "/a/b/", decoded: "/a/b/."},
		{name: "encoded dot-dot", raw: "/shipments/%2e%2e/admin", path: "/admin", escaped: "/admin", decoded: "/shipments/../admin"},
		{name: "half-encoded dot-dot", raw: "/shipments/.%2E/admin", path: "/admin", escaped: "/admin", decoded: "/shipments/../admin"},
		{name: "merged slashes", raw: "//admin//users", path: "/admin/users", escaped: "/admin/users", decoded: "//admin//users"},
		{name: "only slashes", raw: "///", path: "/", escaped: "/", decoded: "///"},

		{name: "not origin-form", raw: "admin", err: "start with /"},
		{name: "empty", raw: "", err: "start with /"},
		{name: "asterisk-form", raw: "*", err: "start with /"},
		{name: "invalid escape", raw: "/a%zz", err: "invalid percent-escape"},
		{name: "truncated escape", raw: "/a%4", err: "invalid percent-escape"},
		{name: "lone percent", raw: "/100%", err: "invalid percent-escape"},
		{name: "encoded NUL", raw: "/admin%00/x", err: "control character"},
		{name: "encoded CR LF", raw: "/a%0d%0aX-Latchkey-Scopes:%20admin", err: "control character"},
		{name: "encoded DEL", raw: "/a%7f", err: "control character"},
		{name: "raw tab", raw: "/a\tb", err: "control character"},
		{name: "encoded slash", raw: "/shipments%2F..%2Fadmin", err: "encoded slash"},
		{name: "encoded slash, lower case", raw: "/a%2fb", err: "encoded slash"},
		{name: "encoded backslash", raw: "/shipments/..%5Cadmin", err: "encoded slash"},
		{name: "raw backslash", raw: `/shipments/..\admin`, err: "backslash"},
		{name: "double-encoded dot", raw: "/%252e%252e/admin", err: "encoded twice"},
		{name: "double-encoded slash", raw: "/a%252Fb", err: "encoded twice"},
		{name: "double encoding split across escapes", raw: "/%25%36%31dmin", err: "encoded twice"},
		{name: "Tomcat path parameter", raw: "/shipments/..;/admin/users", err: "semicolon"},
		{name: "path parameter on a segment", raw: "/admin;jsessionid=1/users", err: "semicolon"},
		{name: "encoded semicolon", raw: "/admin%3B/users", err: "semicolon"},
		{name: "raw fragment", raw: "/admin#/shipments", err: "raw #"},
		{name: "overlong UTF-8 slash", raw: "/a%C0%AFb", err: "not UTF-8"},
		{name: "invalid UTF-8", raw: "/a%FFb", err: "not UTF-8"},
		{name: "raw invalid UTF-8", raw: "/a\xffb", err: "not UTF-8"},

		{name: "relaxed: encoded slash is judged as a slash", raw: "/files/a%2Fb", relax: latchkey.RelaxEncodedSlash,
			path: "/files/a/b", escaped: "/files/a%2Fb", decoded: "/files/a/b"},
		{name: "relaxed: traversal through encoded slashes", raw: "/files/..%2F..%2Fadmin", relax: latchkey.RelaxEncodedSlash,
			path: "/admin", escaped: "/files/..%2F..%2Fadmin", decoded: "/files/../../admin", seg: "/files/../../admin"},
		{name: "relaxed: backslash is judged as a slash", raw: `/files/..\admin`, relax: latchkey.RelaxEncodedSlash,
			path: "/admin", escaped: "/files/..%5Cadmin", decoded: `/files/..\admin`, seg: `/files/..\admin`},
		{name: "relaxed: semicolon judged literally", raw: "/a;b/c", relax: latchkey.RelaxSemicolon,
			path: "/a;b/c", escaped: "/a;b/c", decoded: "/a;b/c"},
		{name: "relaxed: double encoding judged once decoded", raw: "/100%2525", relax: latchkey.RelaxPercent,
			path: "/100%25", escaped: "/100%2525", decoded: "/100%25"},
		{name: "relaxing one class keeps the others", raw: "/a%2Fb;c", relax: latchkey.RelaxEncodedSlash, err: "semicolon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := latchkey.CanonicalizePath(tt.raw, tt.relax)
			if tt.err != "" {
				if err == nil || latchkey.ErrorCode(err) != latchkey.EINVALID || !strings.Contains(latchkey.ErrorMessage(err), tt.err) {
					t.Fatalf("CanonicalizePath(%q) = %+v, %v; want EINVALID mentioning %q", tt.raw, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CanonicalizePath(%q): %v", tt.raw, err)
			}
			want := latchkey.CanonicalPath{Path: tt.path, Escaped: tt.escaped, Decoded: tt.decoded, Segmented: tt.seg}
			if want.Escaped == "" {
				want.Escaped = tt.raw
			}
			if want.Decoded == "" {
				want.Decoded = tt.raw
			}
			if want.Segmented == "" {
				want.Segmented = want.Path
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("CanonicalizePath(%q) (-want +got):\n%s", tt.raw, diff)
			}
		})
	}
}

func TestCanonicalizePathDoesNotAllocateForPlainPaths(t *testing.T) {
	for _, p := range []string{"/", "/shipments/42", "/v1/orders/7/items/", "/a.b/c..d/.e"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = latchkey.CanonicalizePath(p, 0) }); n != 0 {
			t.Errorf("CanonicalizePath(%q): %v allocations", p, n)
		}
	}
}

func TestCanonicalMethod(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"GET", "GET", true},
		{"get", "", false},
		{"HEAD", "GET", true},
		{"head", "", false},
		{"DeLeTe", "", false},
		{"PROPFIND", "PROPFIND", true},
		{"M-SEARCH", "M-SEARCH", true},
		{"", "", false},
		{"GET /admin", "", false},
		{"GET\r\n", "", false},
		{"G(ET", "", false},
	}
	for _, tt := range tests {
		got, ok := latchkey.CanonicalMethod(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CanonicalMethod(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParsePathRelax(t *testing.T) {
	r, err := latchkey.ParsePathRelax([]string{"encoded-slash", " semicolon"})
	if err != nil || r != latchkey.RelaxEncodedSlash|latchkey.RelaxSemicolon {
		t.Errorf("got %v, %v", r, err)
	}
	if _, err := latchkey.ParsePathRelax([]string{"slash"}); err == nil || !strings.Contains(latchkey.ErrorMessage(err), "encoded-slash, semicolon, double-encoding") {
		t.Errorf("unknown name: %v", err)
	}
}

// FuzzCanonicalizePath holds CanonicalizePath to net/url and path.Clean:
// what it accepts decodes as url.PathUnescape decodes it, cleans as
// path.Clean cleans it, is canonical again (idempotent), and holds no
// empty or dot segment, no control character and no encoded slash.
func FuzzCanonicalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/%61/../b//c/", "/a%2Fb", "/a;b", "/%2525", "/a/%2e%2e/b", "/caf%C3%A9", "//", "/a\\b", "/a/b/..", "/.%2e/x"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw string, relax uint8) {
		r := latchkey.PathRelax(relax) & (latchkey.RelaxEncodedSlash | latchkey.RelaxSemicolon | latchkey.RelaxPercent)
		cp, err := latchkey.CanonicalizePath(raw, r)
		if err != nil {
			return
		}
		dec, uerr := url.PathUnescape(raw)
		if uerr != nil || dec != cp.Decoded {
			t.Fatalf("%q: Decoded %q, url.PathUnescape gives %q, %v", raw, cp.Decoded, dec, uerr)
		}
		p := cp.Path
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
			t.Fatalf("%q: Path %q is not clean", raw, p)
		}
		ref := dec
		if r&latchkey.RelaxEncodedSlash != 0 {
			ref = strings.ReplaceAll(ref, `\`, "/")
		}
		if path.Clean(ref) != path.Clean(p) {
			t.Fatalf("%q: Path %q, path.Clean of the decoded path gives %q", raw, p, path.Clean(ref))
		}
		for i := 0; i < len(p); i++ {
			if p[i] < 0x20 || p[i] == 0x7f {
				t.Fatalf("%q: Path %q holds a control character", raw, p)
			}
		}
		if r&latchkey.RelaxEncodedSlash == 0 {
			if e, _ := url.PathUnescape(cp.Escaped); e != p {
				t.Fatalf("%q: Escaped %q decodes to %q, not Path %q", raw, cp.Escaped, e, p)
			}
		}
		again, err := latchkey.CanonicalizePath(cp.Escaped, r)
		if err != nil || again.Escaped != cp.Escaped || (r&latchkey.RelaxEncodedSlash == 0 && again.Path != cp.Path) {
			t.Fatalf("%q: not idempotent: %+v then %+v, %v", raw, cp, again, err)
		}
	})
}

func TestQueryOverridesMethod(t *testing.T) {
	tests := []struct {
		q    string
		want bool
	}{
		{"", false},
		{"page=2&expand=items", false},
		{"method=DELETE", false},
		{"x_method=DELETE", false},
		{"_method=DELETE", true},
		{"page=2&_method=DELETE", true},
		{"page=2;_method=DELETE", true},
		{"_METHOD=delete", true},
		{"%5Fmethod=DELETE", true},
		{"%5fMethod", true},
		{"+_method=PUT", true},
		{"a=1&&_method", true},
		{"a=_method", false},
	}
	for _, tt := range tests {
		if got := latchkey.QueryOverridesMethod(tt.q); got != tt.want {
			t.Errorf("QueryOverridesMethod(%q) = %v, want %v", tt.q, got, tt.want)
		}
	}
}
