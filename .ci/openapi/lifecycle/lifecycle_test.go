// Package lifecycle_test drives a real `latchkey serve` with a client that
// oapi-codegen generated, with its default settings, from the served
// OpenAPI document. .ci/openapi/run copies this module to a temporary
// directory, generates the client into lkclient/ there, builds latchkey and
// runs this test with LATCHKEY_BIN set; nothing generated is committed.
package lifecycle_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"latchkey.invalid/openapi/lifecycle/lkclient"
)

// TestLifecycle: create an application, create a key, verify it,
// deactivate it, see verification refuse it, delete it, and delete the
// application, each through the generated client's typed responses.
func TestLifecycle(t *testing.T) {
	endpoint, secret := startServe(t)
	auth := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+secret)
		return nil
	}
	c, err := lkclient.NewClientWithResponses(endpoint, lkclient.WithRequestEditorFn(auth))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const app = "codegen-lifecycle"
	desc := lkclient.Description("made by the generated client")

	created, err := c.CreateApplicationWithResponse(ctx, nil, lkclient.CreateApplicationRequest{Name: app, Description: &desc})
	check(t, "create application", created, err, http.StatusCreated)
	if created.JSON201 == nil || created.JSON201.Name != app {
		t.Fatalf("create application: JSON201 = %+v", created.JSON201)
	}
	t.Logf("created application %s in account %s", created.JSON201.Name, created.JSON201.Account)

	key, err := c.CreateAccessKeyWithResponse(ctx, app, nil, lkclient.CreateAccessKeyRequest{Description: &desc})
	check(t, "create access key", key, err, http.StatusCreated)
	// secret_access_key is optional in the document: a signing key has none.
	if key.JSON201 == nil || key.JSON201.SecretAccessKey == nil || *key.JSON201.SecretAccessKey == "" || key.JSON201.Status != lkclient.StatusActive {
		t.Fatal("create access key: JSON201 has no secret or is not Active")
	}
	id, keySecret := key.JSON201.AccessKeyId, string(*key.JSON201.SecretAccessKey)
	t.Logf("created access key %s (%s)", id, key.JSON201.Status)

	verify := func(step string, want lkclient.VerifyCode) {
		t.Helper()
		v, err := c.VerifyAccessKeyWithResponse(ctx, lkclient.VerifyRequest{Key: &keySecret})
		check(t, step, v, err, http.StatusOK)
		d := v.JSON200
		if d == nil || d.Code != want || d.Valid != (want == lkclient.VerifyCodeVALID) {
			t.Fatalf("%s: JSON200 = %+v, want code %s", step, d, want)
		}
		if d.AccessKeyId == nil || *d.AccessKeyId != id || d.Application == nil || *d.Application != app {
			t.Fatalf("%s: the decision does not name key %s of %s: %+v", step, id, app, d)
		}
		t.Logf("%s: valid=%t code=%s", step, d.Valid, d.Code)
	}
	verify("verify", lkclient.VerifyCodeVALID)

	inactive := lkclient.StatusInactive
	upd, err := c.UpdateAccessKeyWithResponse(ctx, id, lkclient.UpdateAccessKeyRequest{Status: &inactive})
	check(t, "deactivate", upd, err, http.StatusOK)
	if upd.JSON200 == nil || upd.JSON200.Status != lkclient.StatusInactive {
		t.Fatalf("deactivate: JSON200 = %+v", upd.JSON200)
	}
	t.Logf("deactivated access key %s (%s)", id, upd.JSON200.Status)
	verify("verify after deactivation", lkclient.VerifyCodeINACTIVE)

	del, err := c.DeleteAccessKeyWithResponse(ctx, id, nil)
	check(t, "delete access key", del, err, http.StatusNoContent)
	gone, err := c.GetAccessKeyWithResponse(ctx, id)
	check(t, "get deleted access key", gone, err, http.StatusNotFound)
	if gone.JSON404 == nil || gone.JSON404.Error.Code != lkclient.ErrorErrorCodeNotFound {
		t.Fatalf("get deleted access key: JSON404 = %+v", gone.JSON404)
	}
	t.Logf("deleted access key %s; reading it answers %d %s", id, gone.StatusCode(), gone.JSON404.Error.Code)

	delApp, err := c.DeleteApplicationWithResponse(ctx, app, nil)
	check(t, "delete application", delApp, err, http.StatusNoContent)
	t.Logf("deleted application %s", app)
}

// response is what every generated ...Response type has.
type response interface{ StatusCode() int }

// check fails the test unless r has status want. It shows the body of an
// error only: a success body may hold a secret.
func check(t *testing.T, step string, r response, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	got := r.StatusCode()
	if got == want {
		return
	}
	body := "(not shown)"
	if got >= 400 {
		body = string(reflect.ValueOf(r).Elem().FieldByName("Body").Bytes())
	}
	t.Fatalf("%s: status %d, want %d; body %s", step, got, want, body)
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startServe runs $LATCHKEY_BIN serve on a free port with a fresh SQLite
// database and returns its address and the first operator's secret, read
// from the credentials file it wrote. The secret is never logged.
func startServe(t *testing.T) (endpoint, secret string) {
	t.Helper()
	bin := os.Getenv("LATCHKEY_BIN")
	if bin == "" {
		t.Fatal("LATCHKEY_BIN is not set: .ci/openapi/run builds latchkey and sets it")
	}
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0",
		"--database-url", "sqlite:"+filepath.Join(dir, "latchkey.db"), "--credentials-file", creds)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME=")
	var logs strings.Builder
	cmd.Stderr = &logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("latchkey serve log:\n%s", logs.String())
		}
	})
	select {
	case endpoint = <-found:
	case <-exited:
		t.Fatalf("latchkey serve exited before listening:\n%s", logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("latchkey serve did not print its address within 30s")
	}
	b, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "latchkey_secret_access_key" {
			secret = strings.TrimSpace(v)
		}
	}
	if secret == "" {
		t.Fatalf("%s has no latchkey_secret_access_key", creds)
	}
	return endpoint, secret
}
