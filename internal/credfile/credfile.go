// Package credfile reads and writes latchkey credentials files: INI profiles
// in the style of ~/.aws/credentials.
//
//	[default]
//	latchkey_access_key_id = LKIA...
//	latchkey_secret_access_key = lksk_...
//	endpoint_url = http://127.0.0.1:8080
//
// Files are written atomically with mode 0600, keeping every other profile
// and comment as it was.
package credfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Keys used in a profile.
const (
	KeyAccessKeyID     = "latchkey_access_key_id"
	KeySecretAccessKey = "latchkey_secret_access_key"
	// KeySigningKey is a signing key's private half: the standard base64
	// of its PKCS #8 DER. It never leaves the machine that made it.
	KeySigningKey  = "latchkey_signing_key"
	KeyEndpointURL = "endpoint_url"
)

// DefaultPath returns $LATCHKEY_SHARED_CREDENTIALS_FILE or
// ~/.latchkey/credentials.
func DefaultPath() string {
	if p := os.Getenv("LATCHKEY_SHARED_CREDENTIALS_FILE"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".latchkey", "credentials")
	}
	return filepath.Join(home, ".latchkey", "credentials")
}

// Profile is one section of the file.
type Profile map[string]string

// File is a parsed credentials file. It keeps the original lines so that a
// rewrite changes only the profile written.
type File struct {
	lines []string
}

// Read parses the file at path. A missing file is an empty File.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, nil
	} else if err != nil {
		return nil, err
	}
	f, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse parses file content. A line too long to be part of a credentials
// file ends the parse; Read reports it as an error, so that a rewrite never
// drops what could not be read.
func Parse(b []byte) *File {
	f, _ := parse(b)
	return f
}

func parse(b []byte) (*File, error) {
	f := &File{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f.lines = append(f.lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return f, fmt.Errorf("not a credentials file: %w", err)
	}
	return f, nil
}

func sectionName(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if len(t) >= 2 && t[0] == '[' && t[len(t)-1] == ']' {
		name := strings.TrimSpace(t[1 : len(t)-1])
		name = strings.TrimPrefix(name, "profile ")
		return strings.TrimSpace(name), true
	}
	return "", false
}

// Profiles returns the profile names in file order.
func (f *File) Profiles() []string {
	var out []string
	for _, l := range f.lines {
		if n, ok := sectionName(l); ok {
			out = append(out, n)
		}
	}
	return out
}

// Profile returns the key/value pairs of a profile, or nil if absent.
func (f *File) Profile(name string) Profile {
	var p Profile
	in := false
	for _, l := range f.lines {
		if n, ok := sectionName(l); ok {
			in = n == name
			if in && p == nil {
				p = Profile{}
			}
			continue
		}
		if !in {
			continue
		}
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		p[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return p
}

// Set replaces (or adds) profile name with the given values, in a stable
// key order.
func (f *File) Set(name string, p Profile) {
	var out []string
	skip := false
	replaced := false
	for _, l := range f.lines {
		if n, ok := sectionName(l); ok {
			skip = n == name
			if skip && !replaced {
				out = append(out, renderSection(name, p)...)
				replaced = true
			}
			if skip {
				continue
			}
		}
		if !skip {
			out = append(out, l)
		}
	}
	if !replaced {
		if len(out) > 0 && strings.TrimSpace(out[len(out)-1]) != "" {
			out = append(out, "")
		}
		out = append(out, renderSection(name, p)...)
	}
	f.lines = out
}

func renderSection(name string, p Profile) []string {
	lines := []string{"[" + name + "]"}
	for _, k := range []string{KeyAccessKeyID, KeySecretAccessKey, KeyEndpointURL} {
		if v, ok := p[k]; ok && v != "" {
			lines = append(lines, k+" = "+v)
		}
	}
	var rest []string
	for k := range p {
		if k != KeyAccessKeyID && k != KeySecretAccessKey && k != KeyEndpointURL {
			rest = append(rest, k)
		}
	}
	sortStrings(rest)
	for _, k := range rest {
		lines = append(lines, k+" = "+p[k])
	}
	return lines
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Bytes renders the file.
func (f *File) Bytes() []byte {
	if len(f.lines) == 0 {
		return nil
	}
	return []byte(strings.Join(f.lines, "\n") + "\n")
}

// Write stores the file at path atomically (temporary file, fsync, rename)
// with mode 0600, creating the directory with mode 0700.
func (f *File) Write(path string) error {
	// Never rename over something that is not a regular file: a device
	// such as /dev/null, a directory, a named pipe.
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file; give a credentials file path", path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(f.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// SaveProfile writes profile name into the file at path, keeping the rest.
// If the profile already holds a different key, the old profile is kept
// under "<name>-previous-<n>" so no credential is lost; the new name of the
// old profile is returned ("" when nothing was moved).
func SaveProfile(path, name string, p Profile) (moved string, err error) {
	f, err := Read(path)
	if err != nil {
		return "", err
	}
	if old := f.Profile(name); old != nil && old[KeyAccessKeyID] != "" && old[KeyAccessKeyID] != p[KeyAccessKeyID] {
		for i := 1; ; i++ {
			cand := fmt.Sprintf("%s-previous-%d", name, i)
			if f.Profile(cand) == nil {
				moved = cand
				break
			}
		}
		f.Set(moved, old)
	}
	f.Set(name, p)
	return moved, f.Write(path)
}

// Warnings returns what is risky about the file at path: readable by group
// or others, or inside a git work tree without being ignored (the secret
// would be committed).
func Warnings(path string) []string {
	var out []string
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if st.Mode().Perm()&0o077 != 0 {
		out = append(out, fmt.Sprintf("%s is readable by group or others (mode %04o); run: chmod 600 %s", path, st.Mode().Perm(), path))
	}
	if inGitTreeNotIgnored(path) {
		out = append(out, fmt.Sprintf("%s is inside a git work tree and not ignored: its secret would be committed; move it or add it to .gitignore", path))
	}
	return out
}

func inGitTreeNotIgnored(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	dir := filepath.Dir(abs)
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			break
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
	git, err := exec.LookPath("git")
	if err != nil {
		return true // inside a work tree and we cannot tell: warn
	}
	cmd := exec.Command(git, "-C", dir, "check-ignore", "-q", abs)
	err = cmd.Run()
	// 0: ignored. 1: not ignored. Anything else (git refused the
	// repository, say): we cannot tell, so warn rather than stay silent.
	return err != nil
}
