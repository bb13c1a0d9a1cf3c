package client_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/gatewaytest"
)

// mwKeys makes signing keys through the admin client.
type mwKeys struct{ e *mwEnv }

func (k mwKeys) SigningKey(t testing.TB, app, alg string) gatewaytest.SigningKey {
	t.Helper()
	ctx := t.Context()
	if _, err := k.e.admin.CreateApplication(ctx, client.CreateApplicationInput{Name: app}); err != nil {
		t.Fatal(err)
	}
	priv := gatewaytest.NewKeyPair(t, alg)
	ck, err := k.e.admin.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: app, PublicKey: gatewaytest.PublicKeyPEM(t, priv.Public())})
	if err != nil {
		t.Fatal(err)
	}
	return gatewaytest.SigningKey{ID: ck.ID, Application: app, Algorithm: alg, Key: priv}
}

func (k mwKeys) SetStatus(t testing.TB, id string, s latchkey.Status) {
	t.Helper()
	if _, err := k.e.admin.UpdateAccessKey(t.Context(), id, latchkey.AccessKeyUpdate{Status: &s}); err != nil {
		t.Fatal(err)
	}
}

// TestMiddlewareSigned sends signed calls to a handler behind the
// middleware, which asks a real latchkey server: each refused with its own
// code; the handler runs only for valid ones. No decision on a signed
// call is cached (a replay is refused).
func TestMiddlewareSigned(t *testing.T) {
	var got []byte
	e := newMWEnv(t, client.MiddlewareOptions{})
	h := e.handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("the handler read the body: %v", err)
		}
		got = b
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	gatewaytest.RunSigned(t, mwKeys{e}, srv.URL, false, func(t *testing.T, r *http.Request, body []byte) latchkey.Code {
		t.Helper()
		got = nil
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 {
			var id client.Identity
			if err := json.Unmarshal(b, &id); err != nil || id.AccessKeyID == "" {
				t.Errorf("identity %s: %v", b, err)
			}
			if body != nil && !bytes.Equal(got, body) {
				t.Errorf("the handler read %q, want %q", got, body)
			}
			return latchkey.CodeValid
		}
		return gatewaytest.Refusal(t, resp, b)
	})
}
