package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/cli/clitest"
)

func TestLifecycle(t *testing.T) {
	srv := clitest.Start(t)
	ctx := t.Context()
	c := srv.Client(t, srv.Admin)

	app, err := c.CreateApplication(ctx, client.CreateApplicationInput{Name: "billing", Description: "the billing job"})
	if err != nil {
		t.Fatal(err)
	}
	if app.Name != "billing" || app.Account != latchkey.DefaultAccount {
		t.Fatalf("created %+v", app)
	}
	k1, err := c.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "billing", Description: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if k1.Status != latchkey.StatusActive || !strings.HasPrefix(k1.SecretAccessKey, "lksk_") {
		t.Fatalf("created key %v: status %s", k1, k1.Status)
	}
	k2, err := c.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "billing"})
	if got := latchkey.ErrorCode(err); got != latchkey.ELIMIT {
		t.Fatalf("third key: code %q (%v), want %q", got, err, latchkey.ELIMIT)
	}

	var ids []string
	for k, err := range c.AccessKeys(ctx, client.ListAccessKeysInput{Application: "billing", Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	if diff := cmp.Diff([]string{k1.ID, k2.ID}, ids); diff != "" {
		t.Errorf("keys of billing, one per page (-want +got):\n%s", diff)
	}

	// The application's key is used by a protected API that asks latchkey.
	v := srv.Client(t, srv.Verifier(t, "gateway"))
	res, err := v.Verify(ctx, client.VerifyInput{Key: k1.SecretAccessKey, IP: "192.0.2.7", UserAgent: "billing-job/1.0"})
	if err != nil || !res.Valid || res.AccessKeyID != k1.ID || res.Application != "billing" {
		t.Fatalf("verify: %+v, %v", res, err)
	}
	lu, err := c.GetAccessKeyLastUsed(ctx, k1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if lu.LastUsed == nil || lu.LastUsed.IP != "192.0.2.7" || lu.LastUsed.UserAgent != "billing-job/1.0" || lu.UseCount != 1 {
		t.Fatalf("last used: %+v", lu)
	}

	if err := c.DeleteAccessKey(ctx, client.DeleteAccessKeyInput{AccessKeyID: k1.ID}); latchkey.ErrorCode(err) != latchkey.EKEYACTIVE {
		t.Fatalf("delete while Active: %v", err)
	}
	inactive := latchkey.StatusInactive
	got, err := c.UpdateAccessKey(ctx, k1.ID, latchkey.AccessKeyUpdate{Status: &inactive})
	if err != nil || got.Status != latchkey.StatusInactive {
		t.Fatalf("deactivate: %+v, %v", got, err)
	}
	res, err = v.Verify(ctx, client.VerifyInput{Key: k1.SecretAccessKey, IP: "192.0.2.8", UserAgent: "old-cron"})
	if err != nil || res.Valid || res.Code != latchkey.CodeInactive {
		t.Fatalf("verify Inactive key: %+v, %v", res, err)
	}
	lu, err = c.GetAccessKeyLastUsed(ctx, k1.ID)
	if err != nil || lu.LastRejected == nil || lu.LastRejected.IP != "192.0.2.8" || lu.LastRejected.Reason != latchkey.CodeInactive {
		t.Fatalf("last rejected: %+v, %v", lu, err)
	}
	if err := c.DeleteAccessKey(ctx, client.DeleteAccessKeyInput{AccessKeyID: k1.ID}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAccessKey(ctx, client.DeleteAccessKeyInput{AccessKeyID: k2.ID, Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteApplication(ctx, "", "billing"); err != nil {
		t.Fatal(err)
	}

	var actions []string
	for ev, err := range c.AuditEvents(ctx, client.ListAuditEventsInput{Application: "billing"}) {
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, ev.Action)
	}
	want := []string{"application.delete", "access_key.delete", "access_key.delete", "access_key.update",
		"access_key.create", "access_key.create", "application.create"}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("audit of billing, newest first (-want +got):\n%s", diff)
	}
}

func TestPrincipalsAndAccounts(t *testing.T) {
	srv := clitest.Start(t)
	ctx := t.Context()
	c := srv.Client(t, srv.Admin)

	if _, err := c.CreateAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	accs, err := c.ListAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range accs {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"acme", "default"}, names); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}

	p, err := c.CreatePrincipal(ctx, client.CreatePrincipalInput{Account: "acme", Name: "alice", Role: latchkey.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if p.Account != "acme" || p.Role != latchkey.RoleAdmin || p.AccessKey == nil || p.AccessKey.SecretAccessKey == "" {
		t.Fatalf("created principal %+v", p)
	}
	alice := srv.Client(t, p.AccessKey.Credentials())
	if _, err := alice.CreateApplication(ctx, client.CreateApplicationInput{Name: "shop"}); err != nil {
		t.Fatalf("alice creates in her own account: %v", err)
	}
	// Fail closed: another account looks like it does not exist.
	_, err = alice.GetApplication(ctx, "default", "anything")
	if latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
		t.Fatalf("alice reads the default account: %v", err)
	}
	if _, err := alice.CreateAccount(ctx, "evil"); latchkey.ErrorCode(err) != latchkey.EFORBIDDEN {
		t.Fatalf("admin creates an account: %v", err)
	}
	k, err := c.CreatePrincipalAccessKey(ctx, client.CreatePrincipalAccessKeyInput{Account: "acme", Principal: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.ListAccessKeys(ctx, client.ListAccessKeysInput{Account: "acme", Principal: "alice"})
	if err != nil || len(page.AccessKeys) != 2 || page.AccessKeys[1].ID != k.ID {
		t.Fatalf("alice's keys: %+v, %v", page, err)
	}
	ps, err := c.ListPrincipals(ctx, "acme")
	if err != nil || len(ps) != 1 || ps[0].Name != "alice" {
		t.Fatalf("principals of acme: %+v, %v", ps, err)
	}
	if _, err := c.GetPrincipal(ctx, "acme", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePrincipal(ctx, "acme", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ListApplications(ctx, client.ListApplicationsInput{}); latchkey.ErrorCode(err) != latchkey.EUNAUTHORIZED {
		t.Fatalf("deleted principal still signs in: %v", err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if doc, err := c.OpenAPI(ctx); err != nil || !strings.Contains(string(doc), "openapi") {
		t.Fatalf("openapi: %.40s, %v", doc, err)
	}
}

// With the secret alone the client sends Authorization: Bearer.
func TestBearer(t *testing.T) {
	srv := clitest.Start(t)
	c := srv.Client(t, client.Credentials{SecretAccessKey: srv.Admin.SecretAccessKey})
	if _, err := c.ListAccounts(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	srv := clitest.Start(t)
	ctx := t.Context()
	c := srv.Client(t, srv.Admin)
	anon, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	bad := srv.Client(t, client.Credentials{AccessKeyID: "LKIAAAAAAAAAAAAAAAAA", SecretAccessKey: "not-a-secret"})
	desc := strings.Repeat("x", latchkey.MaxDescriptionLen+1)

	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown key", func() error { _, err := c.GetAccessKey(ctx, "LKIAAAAAAAAAAAAAAAAA"); return err }, latchkey.ENOTFOUND},
		{"unknown application", func() error { _, err := c.GetApplication(ctx, "", "nope"); return err }, latchkey.ENOTFOUND},
		{"bad name", func() error {
			_, err := c.CreateApplication(ctx, client.CreateApplicationInput{Name: "-bad"})
			return err
		}, latchkey.EINVALID},
		{"description too long", func() error {
			_, err := c.UpdateApplication(ctx, client.UpdateApplicationInput{Name: "x", Description: &desc})
			return err
		}, latchkey.EINVALID},
		{"no credentials", func() error { _, err := anon.ListAccounts(ctx); return err }, latchkey.EUNAUTHORIZED},
		{"wrong credentials", func() error { _, err := bad.ListAccounts(ctx); return err }, latchkey.EUNAUTHORIZED},
		{"bad role", func() error {
			_, err := c.CreatePrincipal(ctx, client.CreatePrincipalInput{Name: "bob", Role: "king"})
			return err
		}, latchkey.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var le *latchkey.Error
			if !errors.As(err, &le) {
				t.Fatalf("error %v (%T) is not a *latchkey.Error", err, err)
			}
			if le.Code != tt.code || le.Message == "" {
				t.Fatalf("got %s: %q, want code %s", le.Code, le.Message, tt.code)
			}
		})
	}
}

// A secret given where an ID belongs never leaves the client: it would end
// up in access logs, and the server would flag the key exposed.
func TestSecretNeverInURL(t *testing.T) {
	var hits int
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer hs.Close()
	secret := "lksk_" + strings.Repeat("a", 46)
	c, err := client.New(hs.URL, client.WithCredentials(client.Credentials{SecretAccessKey: secret}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	calls := map[string]func() error{
		"path": func() error { _, err := c.GetAccessKeyLastUsed(ctx, secret); return err },
		"query": func() error {
			_, err := c.ListAuditEvents(ctx, client.ListAuditEventsInput{AccessKeyID: secret})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("%s: %v, want %s", name, err, latchkey.EINVALID)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error repeats the secret", name)
		}
	}
	if hits != 0 {
		t.Errorf("the server saw %d requests", hits)
	}
	if _, err := client.New("http://u:" + secret + "@127.0.0.1:1"); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("endpoint with user information: %v", err)
	}
}

func TestCredentialsHideSecret(t *testing.T) {
	secret := "lksk_" + strings.Repeat("b", 46)
	creds := client.Credentials{AccessKeyID: "LKIAAAAAAAAAAAAAAAAA", SecretAccessKey: secret}
	key := client.CreatedAccessKey{AccessKey: latchkey.AccessKey{ID: "LKIAAAAAAAAAAAAAAAAA"}, SecretAccessKey: secret}
	for _, s := range []string{
		fmt.Sprint(creds), fmt.Sprintf("%+v", creds), fmt.Sprintf("%#v", creds),
		fmt.Sprintf("%v", struct{ C client.Credentials }{creds}),
		fmt.Sprint(key), fmt.Sprintf("%+v", &key), fmt.Sprintf("%#v", key),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("formatted value shows the secret: %s", s)
		}
	}
}

// Errors that do not come from latchkey (a proxy's page, a dead port) still
// come back as *latchkey.Error with the code of their status.
func TestForeignErrors(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer hs.Close()
	c, _ := client.New(hs.URL)
	_, err := c.ListAccounts(t.Context())
	if latchkey.ErrorCode(err) != latchkey.EUNAVAILABLE || !strings.Contains(err.Error(), "502") {
		t.Errorf("proxy error: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, _ = client.New("http://" + addr)
	_, err = c.ListAccounts(t.Context())
	if latchkey.ErrorCode(err) != latchkey.EUNAVAILABLE || !strings.Contains(err.Error(), addr) {
		t.Errorf("closed port: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.ListAccounts(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
}

func TestNewRejectsBadEndpoints(t *testing.T) {
	for _, ep := range []string{"127.0.0.1:8080", "ftp://x", "http://", "http://h/?a=b", "http://h/#f"} {
		if _, err := client.New(ep); latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("New(%q): %v", ep, err)
		}
	}
	c, err := client.New("https://keys.example.com/latchkey/")
	if err != nil || c.Endpoint() != "https://keys.example.com/latchkey" {
		t.Errorf("path prefix: %v, %v", c, err)
	}
}

// TestUpdateAccessKeyRestrictions: UpdateAccessKey sends every field of
// the update, restrictions included (it used to drop all but status,
// description and expiry without a word).
func TestUpdateAccessKeyRestrictions(t *testing.T) {
	srv := clitest.Start(t)
	ctx := t.Context()
	c := srv.Client(t, srv.Admin)
	if _, err := c.CreateApplication(ctx, client.CreateApplicationInput{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "web"})
	if err != nil {
		t.Fatal(err)
	}
	want := &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}, Scopes: []string{"orders:read"}}
	report := &latchkey.Restrictions{Scopes: []string{"orders:list"}}
	got, err := c.UpdateAccessKey(ctx, k.ID, latchkey.AccessKeyUpdate{Restrictions: want, ReportOnly: report})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got.Restrictions); diff != "" {
		t.Errorf("restrictions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(report, got.ReportOnly); diff != "" {
		t.Errorf("report-only restrictions (-want +got):\n%s", diff)
	}
	got, err = c.UpdateAccessKey(ctx, k.ID, latchkey.AccessKeyUpdate{EnforceReportOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(report, got.Restrictions); diff != "" || got.ReportOnly != nil {
		t.Errorf("after enforce_report_only: restrictions %+v, report-only %+v", got.Restrictions, got.ReportOnly)
	}
}
