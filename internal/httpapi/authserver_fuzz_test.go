package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// keyMark stands for the valid key's secret in FuzzAuthorizeServerAgainstNetHTTP's
// inputs: the secret is made at run time, so no corpus file holds one.
const keyMark = "{KEY}"

// FuzzAuthorizeServerAgainstNetHTTP sends the same bytes, one request or
// several, to net/http's server and to the forward-auth listener, both
// serving the API's handler, and requires the same answers and the same
// end of the connection: TestAuthorizeServerAnswersAsNetHTTP's comparison
// on inputs the fuzzer makes. The client ends its sending side after the
// bytes, so that neither server waits for more.
//
// Where the listener answers otherwise by design (TestAuthorizeServerOwnAnswers)
// the two are made alike or the input is passed over: net/http's side
// answers a path other than /v1/authorize as the listener does, and an
// input is not compared when a request in it, read by http.ReadRequest,
// has a target not in origin form or an empty Host line.
func FuzzAuthorizeServerAgainstNetHTTP(f *testing.F) {
	const (
		get  = "GET /v1/authorize HTTP/1.1"
		host = "Host: latchkey"
		orig = "X-Original-Method: GET\r\nX-Original-URI: /shipments/1"
	)
	call := rawRequest(get, host, "X-Api-Key: "+keyMark, orig)
	for _, seed := range []string{
		call,
		call + call,
		rawRequest("HEAD /v1/authorize HTTP/1.1", host, "X-Api-Key: "+keyMark, orig) + call,
		rawRequest("GET /v1/authorize HTTP/1.0", "Connection: keep-alive", "Authorization: Bearer "+keyMark, orig) + call,
		rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 4", "X-Api-Key: "+keyMark, orig) + "abcd\r\n" + call,
		rawRequest("POST /v1/authorize HTTP/1.1", host, "Transfer-Encoding: chunked", "X-Api-Key: "+keyMark, orig) + "4\r\nabcd\r\n0\r\n\r\n" + call,
		rawRequest(get, host, "X-Api-Key: "+keyMark, " folded", orig),
		rawRequest(get, host, host, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /a?b=c", "X-Api-Key: lksk_nope"),
		rawRequest(get, host, "Connection: x", "Connection: close", "X-Api-Key: "+keyMark, orig) + call,
		rawRequest(get, host, "Expect: 100-continue foo", "X-Api-Key: "+keyMark, orig) + call,
		rawRequest("GET /v1/%61uthorize?x=1 HTTP/1.1", host, "X-Api-Key: \t "+keyMark+" \t", orig),
		strings.ReplaceAll(call, "\r\n", "\n"),
		call + get + "\r\nHost: latc",
	} {
		f.Add([]byte(seed))
	}
	apiAddr, authAddr, secret, _ := authListeners(f, Timeouts{}, onlyAuthorize)
	f.Fuzz(func(t *testing.T, in []byte) {
		// Inputs larger than a gateway's request, and those answered
		// otherwise by design (TestAuthorizeServerOwnAnswers), pass
		// without a comparison: returned from, not skipped, as CI counts
		// a skipped test as a defect.
		if len(in) > 64<<10 {
			return
		}
		raw := bytes.ReplaceAll(in, []byte(keyMark), []byte(secret))
		if !comparable(raw) {
			return
		}
		want := sendAll(t, apiAddr, raw)
		got := sendAll(t, authAddr, raw)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("for %q the forward-auth listener answers otherwise than net/http (-net/http +listener):\n%s", in, diff)
		}
	})
}

// onlyAuthorize wraps the API's handler for net/http's side of
// FuzzAuthorizeServerAgainstNetHTTP: a path other than /v1/authorize is
// answered as the forward-auth listener answers it.
func onlyAuthorize(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != authorizePath {
			writeNotAuthorizePath(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// comparable reports whether the requests in raw are ones the two
// servers must answer alike: none has an empty Host line (net/http's
// server takes one; after http.ReadRequest it reads as none, and the
// listener refuses it), and each request http.ReadRequest reads, up to
// the first it refuses, has its target in origin form.
func comparable(raw []byte) bool {
	for line := range bytes.Lines(raw) {
		if len(line) >= 5 && bytes.EqualFold(line[:5], []byte("host:")) && len(bytes.Trim(line[5:], " \t\r\n")) == 0 {
			return false
		}
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return true
		}
		if !strings.HasPrefix(req.RequestURI, "/") {
			return false
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if req.Method == http.MethodPost { // line ends after the body, skipped as the servers skip them
			peek, _ := br.Peek(4)
			_, _ = br.Discard(len(peek) - len(bytes.TrimLeft(peek, "\r\n")))
		}
	}
}

// sent is what a server answered on one connection, made comparable by
// normalAnswers, and whether it then ended the connection.
type sent struct {
	Answers string
	Closed  bool
}

// sendAll writes raw on a new connection to addr, ends the connection's
// sending side and reads until the server ends it, or for at most five
// seconds.
func sendAll(t *testing.T, addr string, raw []byte) sent {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(raw); err != nil {
		// The server ended the connection before it had read the rest.
		var out []byte
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		out, _ = io.ReadAll(c)
		return sent{Answers: normalAnswers(out), Closed: true}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, err := io.ReadAll(c)
	var ne net.Error
	return sent{Answers: normalAnswers(out), Closed: !(errors.As(err, &ne) && ne.Timeout())}
}

// normalAnswers rewrites the answers a server sent on one connection for
// comparison: in each answer's head the Date field is dropped and the
// other fields are sorted (net/http writes them sorted, the listener in
// the handler's order); status lines and bodies are kept as sent.
func normalAnswers(b []byte) string {
	var out strings.Builder
	for len(b) > 0 {
		end := bytes.Index(b, []byte("\r\n\r\n"))
		if !bytes.HasPrefix(b, []byte("HTTP/1.")) || end < 0 {
			out.Write(b) // not an answer's whole head
			break
		}
		lines := strings.Split(string(b[:end]), "\r\n")
		fields := slices.DeleteFunc(lines[1:], func(l string) bool { return strings.HasPrefix(l, "Date: ") })
		slices.Sort(fields)
		out.WriteString(strings.Join(append(lines[:1], fields...), "\r\n") + "\r\n\r\n")
		b = b[end+4:]
		// The body: as long as its Content-Length says, none when the
		// next answer follows at once (HEAD's), else up to the next
		// answer or the end.
		n := -1
		for _, f := range fields {
			if v, ok := strings.CutPrefix(f, "Content-Length: "); ok {
				n, _ = strconv.Atoi(v)
			}
		}
		switch next := bytes.Index(b, []byte("HTTP/1.")); {
		case next == 0:
			n = 0
		case n >= 0 && n <= len(b):
		case next > 0:
			n = next
		default:
			n = len(b)
		}
		out.Write(b[:n])
		b = b[n:]
	}
	return out.String()
}
