// Package extauthz is latchkey's Envoy external authorization service: a
// gRPC server of envoy.service.auth.v3.Authorization that decides on each
// call Envoy asks about exactly as /v1/authorize does
// (httpapi.Server.Decide).
//
// The call is read from the CheckRequest's attribute context: the
// credential from its HTTP headers (authorization, x-api-key), the client
// address from the source address (or from x-forwarded-for when the source
// is a trusted proxy), and the method and path for the scope rules. An
// allowed call goes on with the caller's identity in x-latchkey-* headers,
// and without authorization, x-api-key or any x-latchkey-* header the
// client sent. A refused call is answered by Envoy with the status
// (401, 403, 429), headers and JSON body that /v1/authorize would answer.
package extauthz

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Server implements envoy.service.auth.v3.Authorization.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	// API decides; its TrustedProxies say whose x-forwarded-for is
	// believed.
	API *httpapi.Server
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, s) }

// Check decides on one call. It answers every call with a decision, never
// with an error, so that Envoy's failure_mode_allow never comes into play.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	hr, target := httpRequest(ctx, req)
	res, _ := s.API.Decide(hr, hr.Method, target)
	if res.Valid() {
		h := http.Header{}
		httpapi.SetIdentityHeaders(h, &res.Entry)
		rate := http.Header{}
		httpapi.WriteRateLimitHeaders(rate, res)
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers:              headerOptions(h),
				HeadersToRemove:      toRemove(hr.Header),
				ResponseHeadersToAdd: headerOptions(rate),
			}},
		}, nil
	}
	// The same answer as /v1/authorize, written to a buffer.
	w := &recorder{h: http.Header{}}
	httpapi.WriteDecision(w, res)
	code := codes.PermissionDenied
	if w.status == http.StatusUnauthorized {
		code = codes.Unauthenticated
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: string(res.Code)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(w.status)},
			Headers: headerOptions(w.h),
			Body:    w.body.String(),
		}},
	}, nil
}

// httpRequest rebuilds the call Envoy asks about as an *http.Request, the
// shape httpapi.Server.Decide reads, and returns it with the request
// target (path and query) as Envoy saw it.
func httpRequest(ctx context.Context, req *authv3.CheckRequest) (*http.Request, string) {
	a := req.GetAttributes()
	in := a.GetRequest().GetHttp()
	h := http.Header{}
	for k, v := range in.GetHeaders() {
		if !strings.HasPrefix(k, ":") { // pseudo-headers (:path, :authority) are in their own fields
			h.Add(k, v)
		}
	}
	for _, hv := range in.GetHeaderMap().GetHeaders() { // encode_raw_headers
		if k := hv.GetKey(); !strings.HasPrefix(k, ":") {
			v := hv.GetValue()
			if v == "" {
				v = string(hv.GetRawValue())
			}
			h.Add(k, v)
		}
	}
	method := in.GetMethod()
	if method == "" {
		method = http.MethodGet
	}
	target := in.GetPath()
	if target == "" {
		target = "/"
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		u = &url.URL{Path: target}
	}
	if sc := in.GetScheme(); sc == "http" || sc == "https" {
		u.Scheme = sc // what a signed call's @target-uri starts with
	}
	ctx = httpapi.WithSurface(ctx, latchkey.SurfaceExtAuthz)
	if pem := a.GetSource().GetCertificate(); pem != "" {
		// Envoy's own record of the client certificate (URL-escaped
		// PEM): what a key bound to a certificate is judged by. One that
		// does not parse gives none, and a bound key is refused.
		if t, err := latchkey.ParseEscapedCertificate(pem); err == nil {
			ctx = httpapi.WithClientCert(ctx, t)
		}
	}
	if b, ok := wholeBody(in, h); ok {
		ctx = httpapi.WithBody(ctx, b)
	}
	r := (&http.Request{Method: method, URL: u, Header: h, Host: in.GetHost()}).WithContext(ctx)
	if sa := a.GetSource().GetAddress().GetSocketAddress(); sa != nil {
		r.RemoteAddr = net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
	}
	return r, target
}

// wholeBody is the call's body when Envoy sent it whole (with_request_body
// configured, and the body not cut at max_request_bytes, which Envoy says
// with x-envoy-auth-partial-body: true), for a signed call's
// Content-Digest to be checked. Without it the digest is signed but the
// body is not checked here: the upstream must check it.
func wholeBody(in *authv3.AttributeContext_HttpRequest, h http.Header) ([]byte, bool) {
	if strings.EqualFold(h.Get("x-envoy-auth-partial-body"), "true") {
		return nil, false
	}
	if b := in.GetRawBody(); len(b) > 0 {
		return b, true
	}
	if b := in.GetBody(); b != "" {
		return []byte(b), true
	}
	return nil, false
}

// toRemove lists the headers the upstream must not see: the credential
// (under any name httpapi.IsCredentialHeader reads),
// any header the client sent that latchkey.IsIdentityHeader names
// (x-latchkey-*, in any case and with "_" for "-": those latchkey sets
// are overwritten anyway, but a client must not add others, nor reach a
// WSGI server with x_latchkey_scopes), and method overrides
// (latchkey.MethodOverrideHeaders), which would have the upstream serve
// another method than the one judged.
func toRemove(h http.Header) []string {
	out := []string{"authorization", "x-api-key"}
	for k := range h {
		if latchkey.IsIdentityHeader(k) || latchkey.IsMethodOverrideHeader(k) ||
			(strings.Contains(k, "_") && httpapi.IsCredentialHeader(k)) { // x_api_key: the dashed names are listed
			out = append(out, strings.ToLower(k))
		}
	}
	return out
}

// headerOptions turns h into header options that replace any header of
// the same name.
func headerOptions(h http.Header) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for k, vs := range h {
		for i, v := range vs {
			action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			if i > 0 {
				action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			}
			out = append(out, &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: strings.ToLower(k), Value: v},
				AppendAction: action,
			})
		}
	}
	return out
}

// recorder is the smallest http.ResponseWriter: it keeps the answer.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
