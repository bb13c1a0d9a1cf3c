package credfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey/keyformat"
)

func newKey(t *testing.T) (string, string) {
	t.Helper()
	id, err := keyformat.NewID()
	if err != nil {
		t.Fatal(err)
	}
	sec, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return id, sec
}

func TestParseProfiles(t *testing.T) {
	in := "# comment\n[default]\nlatchkey_access_key_id = A\n latchkey_secret_access_key=B \n\n[profile ci]\nendpoint_url = http://x\n; c\n"
	f := Parse([]byte(in))
	if diff := cmp.Diff([]string{"default", "ci"}, f.Profiles()); diff != "" {
		t.Errorf("profiles (-want +got):\n%s", diff)
	}
	tests := []struct {
		name string
		want Profile
	}{
		{"default", Profile{KeyAccessKeyID: "A", KeySecretAccessKey: "B"}},
		{"ci", Profile{KeyEndpointURL: "http://x"}},
		{"missing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, f.Profile(tt.name)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSaveProfileKeepsOthersAndMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "credentials")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("# keep me\n[other]\nlatchkey_access_key_id = X\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, sec := newKey(t)
	moved, err := SaveProfile(path, "default", Profile{KeyAccessKeyID: id, KeySecretAccessKey: sec})
	if err != nil || moved != "" {
		t.Fatalf("SaveProfile = %q, %v", moved, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
	f, _ := Read(path)
	if f.Profile("other")[KeyAccessKeyID] != "X" {
		t.Error("other profile lost")
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "# keep me") {
		t.Error("comment lost")
	}
	if got := f.Profile("default")[KeySecretAccessKey]; got != sec {
		t.Error("secret not saved")
	}
}

func TestSaveProfileNeverLosesAKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	id1, sec1 := newKey(t)
	id2, sec2 := newKey(t)
	if _, err := SaveProfile(path, "default", Profile{KeyAccessKeyID: id1, KeySecretAccessKey: sec1}); err != nil {
		t.Fatal(err)
	}
	moved, err := SaveProfile(path, "default", Profile{KeyAccessKeyID: id2, KeySecretAccessKey: sec2})
	if err != nil {
		t.Fatal(err)
	}
	if moved != "default-previous-1" {
		t.Errorf("moved = %q", moved)
	}
	f, _ := Read(path)
	if f.Profile("default")[KeyAccessKeyID] != id2 || f.Profile(moved)[KeyAccessKeyID] != id1 || f.Profile(moved)[KeySecretAccessKey] != sec1 {
		t.Errorf("profiles after replace:\n%s", f.Bytes())
	}
	// same key again: nothing moved
	if moved, err := SaveProfile(path, "default", Profile{KeyAccessKeyID: id2, KeySecretAccessKey: sec2}); err != nil || moved != "" {
		t.Errorf("saving the same key: moved %q, %v", moved, err)
	}
}

func TestWarnings(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, []byte("[default]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w := Warnings(loose); len(w) != 1 || !strings.Contains(w[0], "chmod 600") {
		t.Errorf("Warnings(0644 file) = %v", w)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is required for this test")
	}
	repo := filepath.Join(dir, "repo")
	if out, err := exec.Command("git", "init", "-q", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	inTree := filepath.Join(repo, "credentials")
	if err := os.WriteFile(inTree, []byte("[default]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if w := Warnings(inTree); len(w) != 1 || !strings.Contains(w[0], "git work tree") {
		t.Errorf("Warnings(in work tree) = %v", w)
	}
	if err := os.WriteFile(filepath.Join(repo, ".gitignore"), []byte("credentials\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w := Warnings(inTree); len(w) != 0 {
		t.Errorf("Warnings(ignored) = %v", w)
	}
}

func TestWriteRefusesNonRegularFiles(t *testing.T) {
	for _, path := range []string{os.DevNull, t.TempDir()} {
		if _, err := SaveProfile(path, "default", Profile{KeyAccessKeyID: "x"}); err == nil {
			t.Errorf("SaveProfile(%s) = %v; want a refusal", path, err)
		}
	}
	if st, err := os.Stat(os.DevNull); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s is no longer a character device: %v %v", os.DevNull, st, err)
	}
}
