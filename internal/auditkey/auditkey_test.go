package auditkey_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/auditkey"
)

func openssl(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed (apt-get install openssl)")
		}
		t.Skip("openssl is not installed")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return out
}

// TestKeysAgreeWithOpenSSL checks the key files and a checkpoint signature
// against OpenSSL, an independent Ed25519 implementation.
func TestKeysAgreeWithOpenSSL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.key")
	pub, err := auditkey.Generate(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %04o; want 0600", st.Mode().Perm())
	}
	if _, err := auditkey.Generate(path); err == nil {
		t.Error("Generate overwrote an existing key file")
	}
	// OpenSSL derives the same public key from our private key file.
	ourPub, _ := os.ReadFile(path + ".pub")
	if got := openssl(t, "pkey", "-in", path, "-pubout"); !bytes.Equal(got, ourPub) {
		t.Errorf("openssl's public key\n%s\ndiffers from ours\n%s", got, ourPub)
	}
	// A checkpoint we sign verifies under OpenSSL.
	key, err := auditkey.ReadPrivate(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := &latchkey.AuditCheckpoint{Account: "acme", Seq: 50, Hash: strings.Repeat("ab", 32), Time: time.Unix(1764806400, 123456000)}
	latchkey.SignAuditCheckpoint(cp, key)
	sig, _ := base64.StdEncoding.DecodeString(cp.Signature)
	msg, sigFile := filepath.Join(dir, "msg"), filepath.Join(dir, "sig")
	os.WriteFile(msg, cp.SignedMessage(), 0o600)
	os.WriteFile(sigFile, sig, 0o600)
	if out := openssl(t, "pkeyutl", "-verify", "-pubin", "-inkey", path+".pub", "-rawin", "-in", msg, "-sigfile", sigFile); !strings.Contains(string(out), "Signature Verified Successfully") {
		t.Errorf("openssl pkeyutl -verify: %s", out)
	}
	// A key OpenSSL made is read, and its signatures verify here.
	other := filepath.Join(dir, "openssl.key")
	openssl(t, "genpkey", "-algorithm", "ed25519", "-out", other)
	os.Chmod(other, 0o600)
	okey, err := auditkey.ReadPrivate(other)
	if err != nil {
		t.Fatalf("reading openssl's key: %v", err)
	}
	opub, err := auditkey.ParsePublic(openssl(t, "pkey", "-in", other, "-pubout"))
	if err != nil {
		t.Fatal(err)
	}
	latchkey.SignAuditCheckpoint(cp, okey)
	if !cp.VerifySignature(opub) || cp.VerifySignature(pub) {
		t.Error("a checkpoint signed with openssl's key verifies under the wrong key, or not under its own")
	}
	if raw, err := auditkey.ParsePublic([]byte(base64.StdEncoding.EncodeToString(pub))); err != nil || !raw.Equal(pub) {
		t.Errorf("base64 public key: %v", err)
	}
}

func TestReadPrivateRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.key")
	if _, err := auditkey.Generate(path); err != nil {
		t.Fatal(err)
	}
	notKey := filepath.Join(dir, "not-a-key")
	os.WriteFile(notKey, []byte("hello"), 0o600)
	tests := []struct {
		name, path string
		mode       os.FileMode
		want       string
	}{
		{"readable by others", path, 0o644, "chmod 600"},
		{"writable by group", path, 0o620, "chmod 600"},
		{"not PEM", notKey, 0o600, "expected a PEM"},
		{"missing", filepath.Join(dir, "none"), 0, "no such file"},
		{"a directory", dir, 0o700, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode != 0 {
				os.Chmod(tt.path, tt.mode)
			}
			_, err := auditkey.ReadPrivate(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadPrivate: %v; want an error naming %q", err, tt.want)
			}
		})
	}
}
