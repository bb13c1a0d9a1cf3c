package keyformat

import "strings"

// maskKeep is how many characters of a masked secret or token stay
// visible after its prefix, as in Mask: enough to tell two apart, far too
// few to guess the rest.
const maskKeep = 4

// maskMarker replaces each masked run of characters. Its dots are in no
// alphabet a credential is written in, so masked text cannot run together
// into a new secret.
const maskMarker = "..."

// MaskSecrets returns s with every latchkey secret access key in it masked
// as Mask masks one ("lksk_AbCd..."), whatever the letter case of the
// "lksk_" prefix and whether or not the checksum is right, and with the
// base64 encoding of a secret masked too. Secrets with an account's prefix
// ("acme_live_AbCd...") are masked without a list of prefixes: any run of
// 40 or more base62 characters after a prefix-shaped word and '_', checksum
// right or not (prefixedSecrets). A run of four characters or
// fewer after the prefix is left as it is. It is for text that may quote
// a caller's input, such as error messages.
func MaskSecrets(s string) string {
	m := masker{s: s}
	m.latchkeySecrets()
	m.prefixedSecrets()
	m.base64Secrets()
	return m.String()
}

// MaskCredentials returns free text (where a leaked key was seen, as a
// reporter wrote it) with everything in it that looks like a credential
// masked:
//
//   - latchkey secrets, as MaskSecrets masks them;
//   - webhook signing secrets ("whsec_" and base64);
//   - the credentials of "Bearer" and "Basic" authorization (8 characters
//     or more), and of an Authorization header whatever its scheme;
//   - the value of a name=value or name: value pair whose name says
//     credential: it contains password, passwd, passphrase, secret, token,
//     apikey, api_key, api-key, access_key, accesskey, private_key,
//     privatekey, credential or session, or it is key, pass, pw, auth,
//     sig or signature (any case; the value may be quoted);
//   - the password of a URL's user information (scheme://user:password@);
//   - any other run of 24 or more letters and digits with at least one of
//     each that is not hexadecimal, from its fifth character (API tokens
//     of other services: "ghp_AbCd..."). Hexadecimal runs are left alone:
//     commit IDs and digests are what a location is written with, and so
//     are words and names without digits.
//
// Masked runs become "...". The result never holds a checksum-valid latchkey
// secret of s (FuzzMaskCredentials). Other credentials are recognized
// by their shape, so one written in no shape above (a short password
// alone, a hexadecimal token) stays as it is.
func MaskCredentials(s string) string {
	m := masker{s: s}
	m.latchkeySecrets()
	m.prefixedSecrets()
	m.base64Secrets()
	m.prefixedRuns("whsec_", isBase64)
	m.authorizations()
	m.userinfo()
	m.tokens()
	m.namedValues() // last: it leaves alone what the others hid
	return m.String()
}

// masker marks the bytes of s to hide; String writes s with each run of
// hidden bytes replaced by maskMarker. Every rule reads the original text.
type masker struct {
	s    string
	hide []bool // nil until something is hidden
}

func (m *masker) hidden(i int) bool { return m.hide != nil && i < len(m.hide) && m.hide[i] }

func (m *masker) hideRange(i, j int) {
	if i >= j {
		return
	}
	if m.hide == nil {
		m.hide = make([]bool, len(m.s))
	}
	for ; i < j; i++ {
		m.hide[i] = true
	}
}

func (m *masker) String() string {
	if m.hide == nil {
		return m.s
	}
	var b strings.Builder
	b.Grow(len(m.s))
	for i := 0; i < len(m.s); {
		j := i
		for j < len(m.s) && m.hide[j] == m.hide[i] {
			j++
		}
		if m.hide[i] {
			b.WriteString(maskMarker)
		} else {
			b.WriteString(m.s[i:j])
		}
		i = j
	}
	return b.String()
}

// latchkeySecrets hides each run of base62 characters after a "lksk_" in
// any case, but for its first maskKeep characters. Every occurrence of the
// prefix counts, even one that starts inside the run of another, so that
// "lksk_lksk_" + secret hides the secret.
func (m *masker) latchkeySecrets() {
	const body = len(SecretPrefix) - 1 // "lksk" before the '_'
	s := m.s
	for u := strings.IndexByte(s, '_'); u >= 0; {
		if u >= body && strings.EqualFold(s[u-body:u], SecretPrefix[:body]) {
			j := u + 1
			for j < len(s) && IsBase62(s[j]) {
				j++
			}
			m.hideRange(u+1+maskKeep, j)
		}
		next := strings.IndexByte(s[u+1:], '_')
		if next < 0 {
			return
		}
		u += 1 + next
	}
}

// prefixedSecrets hides, but for its first maskKeep characters, each run
// of 40 or more base62 characters that follows a '_' ending a word that
// could be an account's key prefix (a letter, then a-z, 0-9 and '_'): a
// prefixed secret whose checksum is right or not, or one cut short by a
// few characters. Runs that long after such a word are not words, so
// hiding them costs nothing.
func (m *masker) prefixedSecrets() {
	s := m.s
	for u := strings.IndexByte(s, '_'); u >= 0; {
		j := u + 1
		for j < len(s) && IsBase62(s[j]) {
			j++
		}
		if j-(u+1) >= randomLen && prefixBefore(s, u) {
			m.hideRange(u+1+maskKeep, j)
		}
		next := strings.IndexByte(s[u+1:], '_')
		if next < 0 {
			return
		}
		u += 1 + next
	}
}

// prefixBefore reports whether s[:u+1], which ends with '_', ends with
// something shaped like a key prefix of at least MinPrefixLen characters.
func prefixBefore(s string, u int) bool {
	for st := u - 1; st >= 0 && u+1-st <= MaxPrefixLen && prefixChar[s[st]]; st-- {
		if u+1-st >= MinPrefixLen && 'a' <= s[st] && s[st] <= 'z' {
			return true
		}
	}
	return false
}

// base64Needles are what the base64 encoding of "lksk_" contains wherever
// the secret starts in the encoded text (at a multiple of three bytes, or
// one or two bytes after): bGtza1 (lksk_), xrc2tf (?lksk_, as in HTTP Basic
// credentials ":lksk_..."), a3NrX (??lksk_, as in "ID:lksk_..."). The same
// characters start the secret in base64url.
var base64Needles = [...]string{"bGtza1", "xrc2tf", "a3NrX"}

// base64Secrets hides the rest of a base64 run after any of base64Needles.
func (m *masker) base64Secrets() {
	for _, n := range base64Needles {
		m.prefixedRuns(n, isBase64)
	}
}

// prefixedRuns hides the run of characters in alphabet that follows each
// occurrence of prefix.
func (m *masker) prefixedRuns(prefix string, alphabet func(byte) bool) {
	s := m.s
	for i := 0; ; {
		k := strings.Index(s[i:], prefix)
		if k < 0 {
			return
		}
		start := i + k + len(prefix)
		j := start
		if !m.hidden(start) { // already hidden to the end of its run
			for j < len(s) && alphabet(s[j]) {
				j++
			}
			m.hideRange(start, j)
		}
		i = start
	}
}

// authorizations hides the credentials after the word Bearer or Basic (any
// case), when they are at least 8 characters of an RFC 6750 b64token.
func (m *masker) authorizations() {
	s := m.s
	for i := 0; i < len(s); i++ {
		if i > 0 && isWordByte(s[i-1]) {
			continue
		}
		n := 0
		switch {
		case hasPrefixFold(s[i:], "bearer"):
			n = len("bearer")
		case hasPrefixFold(s[i:], "basic"):
			n = len("basic")
		default:
			continue
		}
		start := i + n
		for start < len(s) && (s[start] == ' ' || s[start] == '\t') {
			start++
		}
		if start == i+n {
			continue // "Bearers", "basically"
		}
		j := start
		for j < len(s) && isB64Token(s[j]) {
			j++
		}
		if j-start >= 8 {
			m.hideRange(start, j)
			i = j - 1
		}
	}
}

// namedValues hides the value of name=value and name: value pairs whose
// name says credential (credentialName). It runs after the other rules:
// an Authorization scheme that they hid part of is no scheme.
func (m *masker) namedValues() {
	s := m.s
	for p := 0; p < len(s); p++ {
		if (s[p] != '=' && s[p] != ':') || m.hidden(p) {
			continue
		}
		// The name ends before the separator, past spaces and a closing
		// quote ("password": "x").
		end := p
		for end > 0 && s[end-1] == ' ' {
			end--
		}
		if end > 0 && (s[end-1] == '"' || s[end-1] == '\'') {
			end--
		}
		start := end
		for start > 0 && isNameByte(s[start-1]) {
			start--
		}
		if start == end || !credentialName(s[start:end]) {
			continue
		}
		v := p + 1
		for v < len(s) && (s[v] == ' ' || s[v] == '\t') {
			v++
		}
		if v < len(s) && (s[v] == '"' || s[v] == '\'') {
			j := v + 1
			for j < len(s) && s[j] != s[v] {
				j++
			}
			m.hideRange(v+1, j)
			continue
		}
		if strings.HasSuffix(strings.ToLower(s[start:end]), "authorization") {
			v = m.skipScheme(v) // Authorization: <scheme> <credentials>
		}
		j := v
		for j < len(s) && !isValueEnd(s[j]) {
			j++
		}
		m.hideRange(v, j)
	}
}

// skipScheme returns where the credentials start in an Authorization
// value at v: after its scheme ("Token", "AWS4-HMAC-SHA256": up to 20
// letters, digits and '-', none of them hidden) and the spaces after it;
// or v itself when the value is a single word.
func (m *masker) skipScheme(v int) int {
	s := m.s
	w := v
	for w < len(s) && w-v <= 20 && (IsBase62(s[w]) || s[w] == '-') && !m.hidden(w) {
		w++
	}
	c := w
	for c < len(s) && (s[c] == ' ' || s[c] == '\t') {
		c++
	}
	if w == v || w-v > 20 || c == w || c == len(s) || isValueEnd(s[c]) {
		return v
	}
	return c
}

// credentialWords and credentialNames are the names of values to hide:
// names that contain a word, and short names that are credentials only as
// a whole. See MaskCredentials.
var (
	credentialWords = [...]string{"password", "passwd", "passphrase", "secret", "token", "apikey", "api_key", "api-key",
		"access_key", "accesskey", "private_key", "privatekey", "credential", "session"}
	credentialNames = [...]string{"key", "pass", "pw", "auth", "sig", "signature", "authorization", "proxy-authorization"}
)

func credentialName(name string) bool {
	lower := strings.ToLower(name)
	for _, n := range credentialNames {
		if lower == n {
			return true
		}
	}
	for _, w := range credentialWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// userinfo hides the password in scheme://user:password@host.
func (m *masker) userinfo() {
	s := m.s
	for i := 0; ; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			return
		}
		a := i + k + len("://")
		end := a
		for end < len(s) && !strings.ContainsRune("/?#\\ \t\r\n\"'<>", rune(s[end])) {
			end++
		}
		if at := strings.LastIndexByte(s[a:end], '@'); at >= 0 {
			if c := strings.IndexByte(s[a:a+at], ':'); c >= 0 {
				m.hideRange(a+c+1, a+at)
			}
		}
		i = a
	}
}

// tokens hides, from the fifth character, each run of 24 or more letters
// and digits that has both and is not hexadecimal.
func (m *masker) tokens() {
	s := m.s
	for i := 0; i < len(s); {
		if !IsBase62(s[i]) {
			i++
			continue
		}
		j := i
		var letter, digit, hex = false, false, true
		for ; j < len(s) && IsBase62(s[j]); j++ {
			c := s[j]
			if c <= '9' {
				digit = true
			} else {
				letter = true
				hex = hex && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')
			}
		}
		if j-i >= 24 && letter && digit && !hex {
			m.hideRange(i+maskKeep, j)
		}
		i = j
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// isWordByte: a letter, digit or '_' (a word goes on).
func isWordByte(c byte) bool { return IsBase62(c) || c == '_' }

// isNameByte: what names of fields, parameters and variables are made of.
func isNameByte(c byte) bool { return IsBase62(c) || c == '_' || c == '-' || c == '.' }

// isValueEnd: what ends an unquoted value (a=b&c=d, a=b, c=d; a=b c=d).
func isValueEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '&', ',', ';', '"', '\'', '<', '>':
		return true
	}
	return false
}

// isBase64: the standard and URL alphabets, with padding.
func isBase64(c byte) bool {
	return IsBase62(c) || c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}

// isB64Token: RFC 6750's b64token.
func isB64Token(c byte) bool {
	return IsBase62(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '='
}
