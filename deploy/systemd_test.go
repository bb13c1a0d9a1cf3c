package deploy

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const unitPath = "systemd/latchkey.service"

// unitWithBinary writes the unit to a temporary directory with ExecStart
// pointing at bin (systemd-analyze verify checks that the program exists),
// plus extra lines at the end of [Service], and returns its path.
func unitWithBinary(t *testing.T, bin, extra string) string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "ExecStart=/usr/local/bin/latchkey ", "ExecStart="+bin+" ", 1)
	if !strings.Contains(s, "ExecStart="+bin) {
		t.Fatal("the unit's ExecStart is not /usr/local/bin/latchkey")
	}
	s = strings.Replace(s, "\n[Install]", extra+"\n[Install]", 1)
	p := filepath.Join(t.TempDir(), "latchkey.service")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit. verify
// exits 0 on a misspelt or unparsable directive and only says so, so any
// output at all fails the test; the second case shows that it would.
func TestSystemdUnitVerifies(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	bin := latchkeyBinary(t)
	tests := []struct {
		name  string
		extra string
		clean bool
	}{
		{"as shipped", "", true},
		{"with a misspelt directive", "\nProtectSytem=strict", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, ok := runOutput(sa, "verify", "--man=no", unitWithBinary(t, bin, tt.extra))
			clean := ok && strings.TrimSpace(out) == ""
			if clean != tt.clean {
				t.Errorf("systemd-analyze verify: exit ok %v, output:\n%s", ok, out)
			}
		})
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestSystemdExposure reads the unit's exposure score from
// systemd-analyze security (0 is fully locked down, 10 is fully exposed)
// and holds it at 2.0 or below.
func TestSystemdExposure(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	out, _ := runOutput(sa, "security", "--offline=true", "--no-pager", unitPath)
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security's output:\n%s", out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd exposure: %.1f for deploy/systemd/latchkey.service (systemd-analyze security --offline=true; 0 is best, 10 worst)", score)
	if score > 2.0 {
		t.Errorf("exposure %.1f, want 2.0 or less; what is exposed:\n%s", score, out)
	}
}

// TestSystemdHardening checks the directives the unit promises one by
// one, so that none is dropped while the overall score still passes.
func TestSystemdHardening(t *testing.T) {
	u := readUnit(t, unitPath)
	tests := []struct{ key, want string }{
		{"DynamicUser", "yes"},
		{"StateDirectory", "latchkey"},
		{"StateDirectoryMode", "0700"},
		{"UMask", "0077"},
		{"NoNewPrivileges", "yes"},
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"SystemCallArchitectures", "native"},
		{"KillSignal", "SIGTERM"},
	}
	for _, tt := range tests {
		if got, ok := u.last("Service", tt.key); !ok || got != tt.want {
			t.Errorf("%s=%q (set: %v), want %q", tt.key, got, ok, tt.want)
		}
	}
}

// TestSystemdUnitServes runs latchkey as the unit does: its ExecStart with
// its Environment= settings, the state directory a temporary one, and no
// home directory (a dynamic user has none). The first start writes the
// operator's credentials into the state directory, not to the output, the
// logs are JSON, and SIGTERM stops it cleanly within TimeoutStopSec.
// (No systemd runs as PID 1 here, so the sandbox itself is not applied.)
func TestSystemdUnitServes(t *testing.T) {
	bin := latchkeyBinary(t)
	u := readUnit(t, unitPath)
	state := filepath.Join(t.TempDir(), "latchkey")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	stateDir, _ := u.last("Service", "StateDirectory")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent"}
	for _, e := range u["Service"]["Environment"] {
		env = append(env, strings.ReplaceAll(e, "/var/lib/"+stateDir, state))
	}
	// Port 8080 may be taken on a test machine: an EnvironmentFile would
	// override it the same way.
	env = append(env, "LATCHKEY_ADDR=127.0.0.1:0")
	execStart, _ := u.last("Service", "ExecStart")
	args := strings.Fields(execStart)[1:]

	cmd := exec.Command(bin, args...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var errLines []string
	errDone := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errLines = append(errLines, sc.Text())
		}
		close(errDone)
	}()
	var outText strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		outText.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "listening on") {
			break
		}
	}
	if !strings.Contains(outText.String(), "listening on") {
		<-errDone
		t.Fatalf("latchkey did not start as the unit runs it:\n%s%s", outText.String(), strings.Join(errLines, "\n"))
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	creds := filepath.Join(state, "credentials")
	fi, err := os.Stat(creds)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file in the state directory: %v %v, want mode 0600", err, fi)
	}
	raw, _ := os.ReadFile(creds)
	secret := regexp.MustCompile(`lksk_[0-9A-Za-z]{46}`).FindString(string(raw))
	if secret == "" {
		t.Fatal("the credentials file holds no secret")
	}
	if _, err := os.Stat(filepath.Join(state, "latchkey.db")); err != nil {
		t.Errorf("database not in the state directory: %v", err)
	}

	timeout, _ := u.last("Service", "TimeoutStopSec")
	limit, err := time.ParseDuration(timeout)
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: %v", timeout, err)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { <-errDone; done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(limit):
		t.Fatalf("still running %s after SIGTERM (TimeoutStopSec)", limit)
	}
	t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	all := outText.String() + strings.Join(errLines, "\n")
	if strings.Contains(all, secret) {
		t.Error("the operator's secret reached the output")
	}
	for _, l := range errLines {
		if !json.Valid([]byte(l)) {
			t.Errorf("log line is not JSON (LATCHKEY_LOG_FORMAT=json): %s", l)
		}
	}
}
