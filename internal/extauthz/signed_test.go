package extauthz_test

import (
	"net/http"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"google.golang.org/grpc/codes"
)

// TestCheckSigned asks about signed calls as Envoy does, with the body
// (with_request_body) and without it: each refused with its own code.
// Without the body the digest is signed but cannot be checked here.
func TestCheckSigned(t *testing.T) {
	for _, withBody := range []bool{true, false} {
		name := "with_request_body"
		if !withBody {
			name = "headers only"
		}
		t.Run(name, func(t *testing.T) {
			env := gatewaytest.New(t, gatewaytest.Options{})
			c := dial(t, env)
			env.RunSigned(t, "https://api.example.test", !withBody, func(t *testing.T, r *http.Request, body []byte) latchkey.Code {
				t.Helper()
				h := &authv3.AttributeContext_HttpRequest{Method: r.Method, Path: r.URL.RequestURI(), Host: r.URL.Host, Scheme: r.URL.Scheme,
					Protocol: "HTTP/1.1", Headers: map[string]string{}}
				for k, vs := range r.Header {
					h.Headers[strings.ToLower(k)] = strings.Join(vs, ",")
				}
				if body != nil {
					h.Headers["content-length"] = "13"
					if withBody {
						h.RawBody = body
					}
				}
				req := call{}.checkRequest(false)
				req.Attributes.Request.Http = h
				resp, err := c.Check(t.Context(), req)
				if err != nil {
					t.Fatal(err)
				}
				if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
					return latchkey.CodeValid
				}
				return latchkey.Code(resp.GetStatus().GetMessage())
			})
		})
	}
}
