package credfile

import (
	"maps"
	"strings"
	"testing"
)

// clean reports whether s can be a profile name, key or value as written
// by Set: one line, no surrounding space, nothing INI reads as syntax.
func clean(s string, name bool) bool {
	if s == "" || s != strings.TrimSpace(s) || strings.ContainsAny(s, "\r\n\x00=[];#") {
		return false
	}
	return !name || !strings.HasPrefix(s, "profile ")
}

// FuzzCredentialsFile parses any credentials file, sets one profile and
// reads the file back: the profile holds what was set, and every other
// profile is as it was.
func FuzzCredentialsFile(f *testing.F) {
	f.Add([]byte("[default]\nlatchkey_access_key_id = LKIAAAAAAAAAAAAAAAAA\n\n[profile b]\nx=1\n"), "default", "endpoint_url", "http://127.0.0.1:8080")
	f.Add([]byte("# comment\n[a]\r\nk = v\r\n[a]\nk = w\n"), "a", "k", "z")
	f.Add([]byte("no section\nk=v\n[  c  ]\n;k=v\n"), "c", "latchkey_secret_access_key", "v")
	f.Fuzz(func(t *testing.T, content []byte, name, key, value string) {
		file := Parse(content)
		if !clean(name, true) || !clean(key, false) || !clean(value, false) {
			_ = file.Bytes()
			return
		}
		others := map[string]Profile{}
		for _, n := range file.Profiles() {
			if n != name {
				others[n] = file.Profile(n)
			}
		}
		file.Set(name, Profile{key: value})
		back := Parse(file.Bytes())
		if got := back.Profile(name); len(got) != 1 || got[key] != value {
			t.Fatalf("profile %q after Set: %v, want %s = %s\nfile:\n%s", name, got, key, value, file.Bytes())
		}
		for n, p := range others {
			if got := back.Profile(n); !maps.Equal(got, p) {
				t.Fatalf("profile %q changed: %v, was %v\nfile:\n%s", n, got, p, file.Bytes())
			}
		}
	})
}
