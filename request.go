package latchkey

import (
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// A decision is worth something only if it is about the request the
// upstream will serve. Servers read a request target differently: one
// decodes %61 to "a" and another does not, one removes "/../" and merges
// "//" and another routes on the raw string, one splits on an encoded
// slash or a backslash, one drops ";params" from a segment (Tomcat, Jetty),
// one decodes twice. Every surface therefore judges one canonical form,
// made by CanonicalizePath, and refuses a path that has no single meaning
// (AMBIGUOUS_PATH, 400) instead of guessing which reading the next hop
// will take.

// PathRelax names path forms that have more than one meaning and are
// refused unless an operator accepts them (serve --path-relax).
type PathRelax uint8

const (
	// RelaxEncodedSlash accepts %2F, %5C and a raw backslash. They are
	// forwarded encoded (%2F, %5C); for judging, each is read as "/"
	// (the reading of a server that decodes before it routes, the
	// stricter one).
	RelaxEncodedSlash PathRelax = 1 << iota
	// RelaxSemicolon accepts ";" in a segment and judges it literally
	// (Tomcat and Jetty drop ";..." from a segment before routing).
	RelaxSemicolon
	// RelaxPercent accepts %25 followed by two hex digits, a double
	// encoding that a server decoding twice reads as another character.
	RelaxPercent
)

// PathRelaxNames are the names serve --path-relax accepts, in order.
var PathRelaxNames = []string{"encoded-slash", "semicolon", "double-encoding"}

// ParsePathRelax parses names from PathRelaxNames. Returns EINVALID for
// any other name.
func ParsePathRelax(names []string) (PathRelax, error) {
	var r PathRelax
	for _, n := range names {
		i := slices.Index(PathRelaxNames, strings.TrimSpace(n))
		if i < 0 {
			return 0, Errorf(EINVALID, "%q: expected one of %s", n, strings.Join(PathRelaxNames, ", "))
		}
		r |= 1 << i
	}
	return r, nil
}

// CanonicalPath is a request path in the forms a decision needs.
type CanonicalPath struct {
	// Path is what scope rules match: percent-decoded, dot segments
	// removed (RFC 3986 section 5.2.4), and runs of "/" merged. A
	// trailing "/" is kept.
	Path string
	// Escaped is Path as the reverse proxy forwards it: unreserved
	// characters decoded, every other escape kept as the client wrote it
	// (in upper-case hex), and characters a path may not hold raw
	// encoded. Decoding Escaped gives Path, except for what an operator's
	// PathRelax keeps encoded.
	Escaped string
	// Decoded is the path decoded but not cleaned: the reading of a
	// server that routes without removing dot segments or merging
	// slashes. It equals Path for a path that needs no cleaning.
	Decoded string
	// Segmented is, under RelaxEncodedSlash only, Escaped decoded: the
	// reading of a server that splits segments before it decodes. It is
	// Path otherwise.
	Segmented string
}

// CanonicalizePath returns the canonical forms of raw, the path of a
// request target as it came on the wire (escaped, without the query).
// It refuses, with EINVALID and a message that names the reason, a path
// that:
//   - does not start with "/";
//   - holds an invalid escape ("%zz", "%4");
//   - holds, raw or encoded, a NUL or another control character, or
//     bytes that are not UTF-8 once decoded;
//   - holds a raw "#";
//   - holds %2F, %5C or a raw "\" (unless RelaxEncodedSlash);
//   - holds ";" (unless RelaxSemicolon);
//   - holds %25 followed by two hex digits (unless RelaxPercent).
//
// A path that is already canonical is returned as it is, without
// allocating.
func CanonicalizePath(raw string, relax PathRelax) (CanonicalPath, error) {
	if raw == "" || raw[0] != '/' {
		return CanonicalPath{}, Errorf(EINVALID, "the path must start with /")
	}
	if plainPath(raw) {
		return CanonicalPath{Path: raw, Escaped: raw, Decoded: raw, Segmented: raw}, nil
	}
	var decoded, escaped strings.Builder
	decoded.Grow(len(raw))
	escaped.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return CanonicalPath{}, Errorf(EINVALID, "the path holds an invalid percent-escape")
			}
			d := unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
			switch {
			case d < 0x20 || d == 0x7f:
				return CanonicalPath{}, Errorf(EINVALID, "the path holds an encoded control character")
			case (d == '/' || d == '\\') && relax&RelaxEncodedSlash == 0:
				return CanonicalPath{}, Errorf(EINVALID, "the path holds an encoded slash or backslash (%%2F, %%5C)")
			case d == ';' && relax&RelaxSemicolon == 0:
				return CanonicalPath{}, Errorf(EINVALID, "the path holds an encoded semicolon")
			}
			decoded.WriteByte(d)
			if unreserved(d) {
				escaped.WriteByte(d)
			} else {
				writeEscape(&escaped, d)
			}
		case c < 0x20 || c == 0x7f:
			return CanonicalPath{}, Errorf(EINVALID, "the path holds a control character")
		case c == '#':
			return CanonicalPath{}, Errorf(EINVALID, "the path holds a raw #")
		case c == '\\' && relax&RelaxEncodedSlash == 0:
			return CanonicalPath{}, Errorf(EINVALID, "the path holds a backslash")
		case c == ';' && relax&RelaxSemicolon == 0:
			return CanonicalPath{}, Errorf(EINVALID, "the path holds a semicolon (a path parameter)")
		default:
			decoded.WriteByte(c)
			if pathChar(c) {
				escaped.WriteByte(c)
			} else {
				writeEscape(&escaped, c)
			}
		}
	}
	cp := CanonicalPath{Decoded: decoded.String()}
	if !utf8.ValidString(cp.Decoded) {
		return CanonicalPath{}, Errorf(EINVALID, "the path is not UTF-8 once decoded")
	}
	if relax&RelaxPercent == 0 && doubleEncoded(cp.Decoded) {
		return CanonicalPath{}, Errorf(EINVALID, "the path is encoded twice (%%25 followed by an escape)")
	}
	// Escaped keeps what the client encoded (under RelaxEncodedSlash, %2F
	// stays inside its segment); its dots are all decoded.
	cp.Escaped = cleanPath(escaped.String())
	if relax&RelaxEncodedSlash == 0 {
		cp.Path = cleanPath(cp.Decoded)
		cp.Segmented = cp.Path
		return cp, nil
	}
	// Judged as a server that decodes before it routes: every "/" and
	// "\" is a separator.
	cp.Path = cleanPath(strings.ReplaceAll(cp.Decoded, `\`, "/"))
	cp.Segmented = unescapePath(cp.Escaped)
	return cp, nil
}

// plainPath reports whether p is canonical as it is: characters a path may
// hold raw, no escapes, no empty or dot segments.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !pathChar(c) || c == '%' || c == ';' {
			return false
		}
		if c == '/' && i+1 < len(p) {
			switch p[i+1] {
			case '/':
				return false
			case '.':
				rest := p[i+2:]
				if rest == "" || rest[0] == '/' || rest == "." || strings.HasPrefix(rest, "./") {
					return false
				}
			}
		}
	}
	return true
}

// pathChar reports whether c may appear raw in a path segment: RFC 3986
// pchar (unreserved, sub-delims, ":" and "@") and "/".
func pathChar(c byte) bool {
	if unreserved(c) {
		return true
	}
	switch c {
	case '/', ':', '@', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func writeEscape(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&15])
}

// unescapePath decodes an Escaped path, whose escapes are all valid.
func unescapePath(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// doubleEncoded reports whether a decoded path still holds an escape: a
// "%" (which can only come from %25) followed by two hex digits.
func doubleEncoded(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
	}
	return false
}

// cleanPath removes dot segments and empty segments from p, which starts
// with "/". A trailing "/" stays, and a path that ended in a dot segment
// ends in "/" (RFC 3986 section 5.2.4: "/a/b/.." is "/a/").
func cleanPath(p string) string {
	segs := make([]string, 0, strings.Count(p, "/"))
	trailing := false
	for _, seg := range strings.Split(p[1:], "/") {
		trailing = false
		switch seg {
		case ".":
			trailing = true
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			trailing = true
		default:
			if seg == "" {
				trailing = true
				continue
			}
			segs = append(segs, seg)
		}
	}
	out := "/" + strings.Join(segs, "/")
	if trailing && len(segs) > 0 {
		out += "/"
	}
	return out
}

// IdentityHeaderPrefix starts every header by which latchkey tells an
// upstream who is calling (X-Latchkey-Access-Key-Id, ...).
const IdentityHeaderPrefix = "X-Latchkey-"

// IsIdentityHeader reports whether a header name, read as CGI, WSGI and
// Rack servers read it (case folded, "_" as "-"), starts with
// IdentityHeaderPrefix. Every surface removes such headers from what a
// client sent: those servers merge X_Latchkey_Scopes with
// X-Latchkey-Scopes.
func IsIdentityHeader(name string) bool {
	return len(name) >= len(IdentityHeaderPrefix) && HeaderNameEqual(name[:len(IdentityHeaderPrefix)], IdentityHeaderPrefix)
}

// HeaderNameEqual compares two header names as CGI, WSGI and Rack servers
// do: without regard to ASCII case, with "_" equal to "-".
func HeaderNameEqual(a, b string) bool { return foldEqual(a, b, true) }

// EqualFoldASCII reports whether a and b are equal without regard to the
// case of ASCII letters, and only those: under Unicode folding (as in
// strings.EqualFold) the Kelvin sign would equal "k".
func EqualFoldASCII(a, b string) bool { return foldEqual(a, b, false) }

func foldEqual(a, b string, underscore bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if underscore && x == '_' {
			x = '-'
		}
		if underscore && y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// MethodOverrideHeaders are headers by which frameworks (Express's
// method-override, Rails, Laravel, Symfony, ...) serve a call as another
// method than the one it was judged as: every surface removes them.
var MethodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// IsMethodOverrideHeader reports whether name, read as HeaderNameEqual
// reads it, is one of MethodOverrideHeaders.
func IsMethodOverrideHeader(name string) bool {
	for _, h := range MethodOverrideHeaders {
		if HeaderNameEqual(name, h) {
			return true
		}
	}
	return false
}

// QueryOverridesMethod reports whether a raw query holds a _method
// parameter (in any case, pairs split on "&" or ";"), by which Rails,
// Laravel and Symfony serve a POST as another method: such a call would
// be judged as one method and served as another, and every surface
// refuses it (AMBIGUOUS_PATH).
func QueryOverridesMethod(q string) bool {
	// One pass; only a name that starts with "_" or "%" (an encoded "_")
	// is looked at closer, so an ordinary query costs a byte loop.
	for start := 0; start < len(q); {
		end := start
		for end < len(q) && q[end] != '&' && q[end] != ';' {
			end++
		}
		if c := q[start]; (c == '_' || c == '%' || c == ' ' || c == '+') && methodParam(q[start:end]) {
			return true
		}
		start = end + 1
	}
	return false
}

// methodParam reports whether a query pair's name is _method.
func methodParam(pair string) bool {
	name, _, _ := strings.Cut(pair, "=")
	if strings.ContainsAny(name, "%+") {
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
	}
	return HeaderNameEqual(strings.TrimSpace(name), "_method")
}

// CanonicalMethod returns the method a decision judges: m itself, or GET
// for HEAD (servers answer HEAD with the GET handler). ok is false when m
// is not an HTTP token, or holds a lower-case letter: methods are
// case-sensitive (RFC 9110 section 9.1), yet some routers (Express) serve
// "get" as GET while others (Go's ServeMux) do not, so such a method has
// no single meaning.
func CanonicalMethod(m string) (judged string, ok bool) {
	if m == "" {
		return "", false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !tokenChar(c) || 'a' <= c && c <= 'z' {
			return "", false
		}
	}
	if m == "HEAD" {
		return "GET", true
	}
	return m, true
}

// tokenChar reports whether c is an RFC 9110 tchar.
func tokenChar(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
