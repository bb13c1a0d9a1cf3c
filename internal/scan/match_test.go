package scan

import (
	"bytes"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey/keyformat"
)

// newSecret and newID make credentials at run time: no fixture holds one.
func newSecret(t testing.TB) string {
	t.Helper()
	s, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newID(t testing.TB) string {
	t.Helper()
	id, err := keyformat.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// lookAlike returns "lksk_" and 46 base62 characters whose checksum is
// wrong: the shape of a secret, but not one.
func lookAlike(r *rand.Rand) string {
	for {
		b := []byte(keyformat.SecretPrefix)
		for range keyformat.SecretLen - len(keyformat.SecretPrefix) {
			b = append(b, keyformat.Alphabet[r.IntN(62)])
		}
		if s := string(b); !keyformat.ValidSecret(s) {
			return s
		}
	}
}

// scanAll runs a matcher over b and returns what it emitted.
func scanAll(t testing.TB, m *matcher, r io.Reader, skipBinary bool) ([]match, bool) {
	t.Helper()
	var out []match
	_, binary, err := m.scan(r, skipBinary, func(mt match) { out = append(out, mt) })
	if err != nil {
		t.Fatal(err)
	}
	return out, binary
}

var matchCmp = cmp.AllowUnexported(match{})

// ascii fills in what a match on an ASCII line has: its UTF-16 column is
// its byte column, and its size is that of its encoding.
func ascii(ms []match) []match {
	out := slices.Clone(ms)
	for i := range out {
		out[i].col16, out[i].size = out[i].col, sizeOf(out[i].encoding)
	}
	return out
}

func sizeOf(encoding string) int {
	switch encoding {
	case "base64":
		return b64SecretLen
	case "basic":
		return b64BasicLen
	}
	return keyformat.SecretLen
}

func TestMatcher(t *testing.T) {
	s1, s2, id := newSecret(t), newSecret(t), newID(t)
	bad := lookAlike(rand.New(rand.NewPCG(1, 2)))
	pad := strings.Repeat("x", 300)
	tests := []struct {
		name  string
		input string
		want  []match
	}{
		{"empty", "", nil},
		{"alone", s1, []match{{line: 1, col: 1, secret: s1}}},
		{"look-alike", "key = " + bad + "\n", nil},
		{"short", s1[:keyformat.SecretLen-1], nil},
		{"one character changed", s1[:20] + string(rune(s1[20]^1)) + s1[21:], nil},
		{"non-base62 inside", s1[:20] + "-" + s1[21:], nil},
		{"in quotes", `token: "` + s1 + `"`, []match{{line: 1, col: 9, secret: s1}}},
		{"after a word", "xyz" + s1, []match{{line: 1, col: 4, secret: s1}}},
		{"two lines", "a\nb " + s1 + "\n\n  " + s2 + "\n",
			[]match{{line: 2, col: 3, secret: s1}, {line: 4, col: 3, secret: s2}}},
		{"crlf", "a\r\nb\r\n" + s1 + "\r\n", []match{{line: 3, col: 1, secret: s1}}},
		{"id same line", id + ":" + s1, []match{{line: 1, col: 22, secret: s1, keyID: id}}},
		{"id after", s1 + " " + id, []match{{line: 1, col: 1, secret: s1, keyID: id}}},
		{"id three lines up", id + "\n\n\n" + s1, []match{{line: 4, col: 1, secret: s1, keyID: id}}},
		{"id four lines up", id + "\n\n\n\n" + s1, []match{{line: 5, col: 1, secret: s1}}},
		{"id too far on the line", id + pad + pad + s1, []match{{line: 1, col: 621, secret: s1}}},
		{"id inside a word", "X" + id + " " + s1, []match{{line: 1, col: 23, secret: s1}}},
		{"nearest id wins", newID(t) + "\n" + id + " " + s1, []match{{line: 2, col: 22, secret: s1, keyID: id}}},
		{"credentials file", "[default]\nlatchkey_access_key_id = " + id + "\nlatchkey_secret_access_key = " + s1 + "\n",
			[]match{{line: 3, col: 30, secret: s1, keyID: id, credValue: true}}},
		{"env quoted", `latchkey_secret_access_key="` + s1 + `"`, []match{{line: 1, col: 29, secret: s1, credValue: true}}},
		{"other key", "other_key = " + s1, []match{{line: 1, col: 13, secret: s1}}},
		{"adjacent", s1 + s2, []match{{line: 1, col: 1, secret: s1}, {line: 1, col: 52, secret: s2}}},
		{"kubernetes secret", "data:\n  LATCHKEY_SECRET: " + b64(s1) + "\n",
			[]match{{line: 2, col: 20, secret: s1, encoding: "base64"}}},
		{"base64 with a newline", b64(s1 + "\n"), []match{{line: 1, col: 1, secret: s1, encoding: "base64"}}},
		{"base64 inside a longer word", "QUJD" + b64(s1), nil},
		{"base64 of a look-alike", b64(bad), nil},
		{"http basic", "Authorization: Basic " + b64(id+":"+s2) + "\r\n",
			[]match{{line: 1, col: 22, secret: s2, keyID: id, encoding: "basic"}}},
		{"http basic without a colon", "Basic " + b64(id+"-"+s2), nil},
		{"curl -u", "curl -u " + id + ":" + s1 + " http://127.0.0.1", []match{{line: 1, col: 30, secret: s1, keyID: id}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tt.input)},
				{"one byte at a time", iotest.OneByteReader(strings.NewReader(tt.input))},
			} {
				got, _ := scanAll(t, newMatcher(), r.r, true)
				if d := cmp.Diff(ascii(tt.want), got, matchCmp); d != "" {
					t.Errorf("%s: matches (-want +got):\n%s", r.name, d)
				}
			}
		})
	}
}

// Secrets across the edges of the read window keep their line, column and
// access key ID.
func TestMatcherWindowEdges(t *testing.T) {
	const size = minBufSize + 100
	id := newID(t)
	for off := size - 800; off < size+100; off += 7 {
		s := newSecret(t)
		in := strings.Repeat("a", off-30) + "\n" + id + "         " + s + "\nzz " + b64(id+":"+s) + "\n"
		got, _ := scanAll(t, newMatcherSize(size), strings.NewReader(in), true)
		want := ascii([]match{
			{line: 2, col: 30, secret: s, keyID: id},
			{line: 3, col: 4, secret: s, keyID: id, encoding: "basic"},
		})
		if d := cmp.Diff(want, got, matchCmp); d != "" {
			t.Fatalf("offset %d (-want +got):\n%s", off, d)
		}
	}
}

// Columns in UTF-16 code units, SARIF's default unit: a character of the
// Basic Multilingual Plane is one unit whatever its UTF-8 length, one
// beyond it (an emoji, U+1D11E) two, an invalid byte one (U+FFFD). Lines
// longer than the read window, with characters cut by its edges, count the
// same.
func TestMatcherUTF16Columns(t *testing.T) {
	s, id := newSecret(t), newID(t)
	tests := []struct {
		name       string
		before     string // on the secret's line, before it
		col, col16 int
	}{
		{"ascii", "key = ", 7, 7},
		{"two-byte letters", "clé = é", 10, 8},
		{"three-byte letters", "键 = ", 7, 5},
		{"outside the BMP", "\U0001D11E\U0001F511 ", 10, 6},
		{"invalid bytes", "\xff\xfe\xc3 ", 5, 5},
		{"cut sequence", "\xe2\x82 ", 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "first line é\n" + tt.before + s + " " + id + "\n"
			for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
				got, _ := scanAll(t, newMatcher(), r, true)
				want := []match{{line: 2, col: tt.col, col16: tt.col16, size: keyformat.SecretLen, secret: s, keyID: id}}
				if d := cmp.Diff(want, got, matchCmp); d != "" {
					t.Errorf("(-want +got):\n%s", d)
				}
			}
		})
	}

	// One line of multi-byte characters many windows long, the secret at
	// every offset around an edge.
	const size = minBufSize + 100
	for _, ch := range []string{"é", "键", "\U0001D11E"} {
		for pad := 3*size - 40; pad < 3*size+40; pad += 3 {
			line := strings.Repeat(ch, pad/len(ch)) + strings.Repeat("x", pad%len(ch))
			in := line + s + "\n"
			got, _ := scanAll(t, newMatcherSize(size), strings.NewReader(in), true)
			want := []match{{line: 1, col: len(line) + 1, col16: len(utf16.Encode([]rune(line))) + 1, size: keyformat.SecretLen, secret: s}}
			if d := cmp.Diff(want, got, matchCmp); d != "" {
				t.Fatalf("%q x %d: (-want +got):\n%s", ch, pad, d)
			}
		}
	}
}

// A minified file of several megabytes on one line streams through.
func TestMatcherMinifiedLine(t *testing.T) {
	s := newSecret(t)
	var b bytes.Buffer
	b.WriteString("var a={")
	for b.Len() < 3<<20 {
		b.WriteString(`"k":"v",`)
	}
	col := b.Len() + 1
	b.WriteString(s + `",`)
	for b.Len() < 6<<20 {
		b.WriteString(`"k":"v",`)
	}
	b.WriteString("};\n")
	m := newMatcher()
	got, _ := scanAll(t, m, &b, true)
	want := ascii([]match{{line: 1, col: col, secret: s}})
	if d := cmp.Diff(want, got, matchCmp); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if len(m.buf) != bufSize {
		t.Errorf("window grew to %d bytes", len(m.buf))
	}
}

func TestMatcherBinary(t *testing.T) {
	s := newSecret(t)
	tests := []struct {
		name       string
		input      string
		skip       bool
		wantBinary bool
		wantFound  int
	}{
		{"nul at start skipped", "\x00\x01" + s, true, true, 0},
		{"nul at start included", "\x00\x01" + s, false, false, 1},
		{"nul after 8 KiB is text", strings.Repeat("a", sniffLen) + "\x00" + s, true, false, 1},
		{"text", s, true, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, binary := scanAll(t, newMatcher(), strings.NewReader(tt.input), tt.skip)
			if binary != tt.wantBinary || len(got) != tt.wantFound {
				t.Errorf("binary = %v, found %d; want %v, %d", binary, len(got), tt.wantBinary, tt.wantFound)
			}
		})
	}
}

// Random strings of the shape of a secret whose checksum fails are never
// reported: the checksum is what keeps the scanner quiet.
func TestMatcherNoFalsePositives(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var b strings.Builder
	for i := range 100_000 {
		b.WriteString(lookAlike(r))
		if i%3 == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	got, _ := scanAll(t, newMatcher(), strings.NewReader(b.String()), true)
	if len(got) != 0 {
		t.Fatalf("%d look-alikes reported, e.g. at line %d", len(got), got[0].line)
	}
}

func TestMatcherReadError(t *testing.T) {
	r := io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(io.ErrUnexpectedEOF))
	_, _, err := newMatcher().scan(r, true, func(match) {})
	if err == nil {
		t.Fatal("read error was swallowed")
	}
}

// reference finds secrets the slow, obvious way over the whole input.
func reference(b []byte) []match {
	var out []match
	for i := 0; i < len(b); i++ {
		var (
			mt   match
			size int
		)
		switch {
		case i+keyformat.SecretLen <= len(b) && keyformat.ValidSecret(string(b[i:i+keyformat.SecretLen])):
			mt = match{secret: string(b[i : i+keyformat.SecretLen]), credValue: isCredValue(b[:i])}
			size = keyformat.SecretLen
		case (i == 0 || !isBase64(b[i-1])) && i+b64SecretLen <= len(b) && validB64(b[i:i+b64SecretLen]):
			d, _ := base64.StdEncoding.DecodeString(string(b[i : i+b64SecretLen]))
			mt = match{secret: string(d), encoding: "base64"}
			size = b64SecretLen
		case (i == 0 || !isBase64(b[i-1])) && i+b64BasicLen <= len(b) && validBasic(b[i:i+b64BasicLen]):
			d, _ := base64.StdEncoding.DecodeString(string(b[i : i+b64BasicLen]))
			mt = match{secret: string(d[21:]), keyID: string(d[:20]), encoding: "basic"}
			size = b64BasicLen
		default:
			continue
		}
		mt.line = 1 + bytes.Count(b[:i], []byte{'\n'})
		mt.col = i - bytes.LastIndexByte(b[:i], '\n')
		// Go decodes each invalid byte as one U+FFFD, as viewers do.
		mt.col16 = len(utf16.Encode([]rune(string(b[i-mt.col+1:i])))) + 1
		mt.size = size
		if mt.keyID == "" {
			mt.keyID = nearestID(b, i, i+size)
		}
		out = append(out, mt)
		i += size - 1
	}
	return out
}

func validB64(enc []byte) bool {
	d, err := base64.StdEncoding.DecodeString(string(enc))
	return err == nil && keyformat.ValidSecret(string(d))
}

func validBasic(enc []byte) bool {
	d, err := base64.StdEncoding.DecodeString(string(enc))
	if err != nil || len(d) != 72 {
		return false
	}
	id, colon, sec := string(d[:20]), d[20], string(d[21:])
	return colon == ':' && keyformat.ValidID(id) && keyformat.ValidSecret(sec)
}

// FuzzMatcher checks the streaming matcher, with a small window and reads
// of odd sizes, against the whole-input reference.
func FuzzMatcher(f *testing.F) {
	s1, s2, id := newSecret(f), newSecret(f), newID(f)
	f.Add([]byte(s1), uint8(0))
	f.Add([]byte("latchkey_secret_access_key = "+s1+"\n"+id), uint8(3))
	f.Add([]byte(strings.Repeat("z\n", 600)+id+" "+s1+s2+strings.Repeat("q", 900)), uint8(17))
	f.Add([]byte(strings.Repeat("lksk_", 400)+s2), uint8(200))
	f.Add([]byte("\x00"+s1), uint8(1))
	f.Add([]byte(strings.Repeat("é键\U0001D11E\xff", 300)+s1+"\n"+strings.Repeat("\xe2\x82", 400)+s2), uint8(11))
	f.Add([]byte("data:\n  KEY: "+b64(s1)+"\nAuthorization: Basic "+b64(id+":"+s2)+"\n"), uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		want := reference(in)
		var r io.Reader = bytes.NewReader(in)
		if chunk > 0 {
			r = &chunkReader{b: in, n: int(chunk)}
		}
		got, _ := scanAll(t, newMatcherSize(minBufSize+int(chunk)), r, false)
		if d := cmp.Diff(want, got, matchCmp, cmp.Comparer(func(a, b string) bool { return a == b })); d != "" {
			t.Fatalf("(-reference +matcher):\n%s", d)
		}
	})
}

type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// BenchmarkMatcher measures one matcher (one core) on text with a secret
// per megabyte: go test -bench Matcher ./internal/scan
func BenchmarkMatcher(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	words := strings.Fields("func return if else for range var config value key token user id name data := { } ( ) // lookup")
	var buf bytes.Buffer
	for buf.Len() < 16<<20 {
		if buf.Len()%(1<<20) < 80 {
			buf.WriteString("secret = " + newSecret(b) + "\n")
		}
		buf.WriteString(words[r.IntN(len(words))])
		buf.WriteByte(' ')
		if r.IntN(10) == 0 {
			buf.WriteByte('\n')
		}
	}
	data := buf.Bytes()
	m := newMatcher()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := m.scan(bytes.NewReader(data), true, func(match) {}); err != nil {
			b.Fatal(err)
		}
	}
}
