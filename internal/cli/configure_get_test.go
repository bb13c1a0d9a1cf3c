package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/latchkey/latchkey/keyformat"
)

// configure get never prints a secret to a terminal unless told to with
// --show; to a pipe (a $(...) capture) it prints it. The other settings are
// printed either way.
func TestConfigureGetTerminal(t *testing.T) {
	secret, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	id := "LKIAAAAAAAAAAAAAAAAA"
	creds := filepath.Join(t.TempDir(), "credentials")
	if _, err := credfile.SaveProfile(creds, "default", credfile.Profile{
		credfile.KeyAccessKeyID: id, credfile.KeySecretAccessKey: secret, credfile.KeyEndpointURL: "http://127.0.0.1:1",
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		tty      bool
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{"secret to a pipe", false, []string{"latchkey_secret_access_key"}, 0, secret + "\n", ""},
		{"secret to a terminal", true, []string{"latchkey_secret_access_key"}, 2, "",
			"not printing the secret access key to a terminal"},
		{"the refusal says how to capture it", true, []string{"latchkey_secret_access_key"}, 2, "",
			"SECRET=$(latchkey configure get latchkey_secret_access_key), or add --show"},
		{"secret to a terminal with --show", true, []string{"latchkey_secret_access_key", "--show"}, 0, secret + "\n", ""},
		{"key ID to a terminal", true, []string{"latchkey_access_key_id"}, 0, id + "\n", ""},
		{"endpoint to a terminal", true, []string{"endpoint_url"}, 0, "http://127.0.0.1:1\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runAs(t, map[string]string{cli.EnvCredentialsFile: creds}, tt.tty, append([]string{"configure", "get"}, tt.args...)...)
			if code != tt.code || stdout != tt.stdout || !strings.Contains(stderr, tt.inStderr) {
				t.Errorf("exit %d, want %d\nstdout %q, want %q\nstderr %q, want it to hold %q",
					code, tt.code, mask(stdout, secret), mask(tt.stdout, secret), stderr, tt.inStderr)
			}
			if strings.Contains(stderr, secret) {
				t.Errorf("the secret is on stderr")
			}
		})
	}
}

// mask hides secret in a test failure message.
func mask(s, secret string) string { return strings.ReplaceAll(s, secret, keyformat.Mask(secret)) }
