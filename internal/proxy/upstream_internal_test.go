package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestH1ClientKeepsItsConnection: calls one after the other, with and
// without a body in the answer, chunked or not, all go over one
// connection; an answer the caller does not read to its end, or one that
// says Connection: close, costs its connection.
func TestH1ClientKeepsItsConnection(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/chunked":
			_, _ = io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "b")
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		default:
			_, _ = io.WriteString(w, "hello")
		}
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	cl := newH1Client(u, Timeouts{})
	dials := 0
	cl.newConns = func() { dials++ }
	call := func(method, path string, readAll bool) string {
		t.Helper()
		req := httptest.NewRequestWithContext(t.Context(), method, up.URL+path, nil)
		req.RequestURI = ""
		res, err := cl.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		var b []byte
		if readAll {
			b, _ = io.ReadAll(res.Body)
		}
		res.Body.Close()
		return string(b)
	}
	for range 5 {
		for _, c := range []struct{ method, path, want string }{
			{"GET", "/", "hello"}, {"HEAD", "/", ""}, {"GET", "/204", ""}, {"GET", "/chunked", "ab"}, {"OPTIONS", "/", "hello"},
		} {
			if got := call(c.method, c.path, true); got != c.want {
				t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.want)
			}
		}
	}
	if dials != 1 {
		t.Errorf("%d connections for 25 calls in a row, want 1", dials)
	}
	call("GET", "/", false) // closed unread: the connection goes
	call("GET", "/", true)
	call("GET", "/close", true) // Connection: close: so does this one
	call("GET", "/", true)
	if dials != 3 {
		t.Errorf("%d connections, want 3", dials)
	}
}
