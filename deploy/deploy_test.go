// Package deploy holds the tests of what operators install: the systemd
// unit (deploy/systemd) checked with systemd-analyze and run with its own
// settings. The container image (deploy/container) is checked by
// .ci/container, and the Helm chart (deploy/helm/latchkey) by the module
// deploy/helm/check, which keeps the Kubernetes API types out of go.mod.
package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// need returns the path of a program the test needs. Under CI a missing
// program fails the test (CI must not pass by skipping); elsewhere the
// test is skipped.
func need(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required (Debian package %s): %v", name, pkg, err)
		}
		t.Skipf("%s not found (Debian package %s)", name, pkg)
	}
	return p
}

var built struct {
	once sync.Once
	path string
	err  error
}

// latchkeyBinary builds cmd/latchkey once for the package's tests.
func latchkeyBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "latchkey-deploy")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "latchkey")
		if out, err := exec.Command("go", "build", "-o", built.path, "../cmd/latchkey").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("building latchkey: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// unit is a parsed systemd unit file: section, then key, then the values
// in order (a key may repeat).
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: not a unit file line: %q", path, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// last returns the value of a key that is set once, or the last setting.
func (u unit) last(section, key string) (string, bool) {
	vs, ok := u[section][key]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// runOutput runs a command and returns its combined output and whether it
// exited 0.
func runOutput(name string, args ...string) (string, bool) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err == nil
}
