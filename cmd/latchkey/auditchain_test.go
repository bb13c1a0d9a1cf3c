package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAuditChainReplicasCrash writes management changes through four
// replicas on one PostgreSQL database, all appending to one account's
// audit chain, and kills one replica with SIGKILL in the middle of each of
// LATCHKEY_CRASH_ROUNDS rounds (20 by default), restarting it. Afterwards
// `latchkey audit verify`, through the API and on an export, finds the
// chain complete, in one order and matching the checkpoints the replicas
// signed; an export edited by hand is caught and the event named.
func TestAuditChainReplicasCrash(t *testing.T) {
	rounds := crashRounds(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "audit-signing.key")
	if out, code := runLatchkey(t, binPath, "audit", "keygen", "--out", keyFile); code != 0 {
		t.Fatalf("audit keygen: exit %d\n%s", code, out)
	}
	c := startCluster(t, newPGDatabase(t), 4, "--audit-signing-key", keyFile,
		"--audit-checkpoint-events", "7", "--audit-checkpoint-interval", "200ms")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 21))
	var acked atomic.Int64
	for round := range rounds {
		var (
			stop atomic.Bool
			wg   sync.WaitGroup
		)
		for w := range len(c.replicas) {
			r := c.replicas[w]
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					app := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					for _, call := range []struct {
						method, path string
						body         any
						want         int
					}{
						{"POST", "/v1/applications", map[string]string{"name": app}, 201},
						{"PATCH", "/v1/applications/" + app, map[string]string{"description": "changed"}, 200},
						{"DELETE", "/v1/applications/" + app, nil, 204},
					} {
						st, _, err := c.call(r, call.method, call.path, c.admin, call.body)
						if err != nil || st != call.want {
							break // the killed replica, or its cycle cut short
						}
						acked.Add(1)
					}
				}
			})
		}
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		victim := rng.IntN(len(c.replicas))
		if err := c.replicas[victim].cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-c.replicas[victim].exited
		time.Sleep(100 * time.Millisecond)
		stop.Store(true)
		wg.Wait()
		c.replace(victim)
	}
	time.Sleep(time.Second) // a checkpoint of the last head, at 200ms intervals
	t.Logf("%d rounds, %d acknowledged changes", rounds, acked.Load())

	cli := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(os.Environ(), "HOME="+c.home, "XDG_DATA_HOME=", "LATCHKEY_SHARED_CREDENTIALS_FILE=",
			"LATCHKEY_ENDPOINT_URL="+c.replicas[0].endpoint, goraceEnv())
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	summary := regexp.MustCompile(`account default: (\d+) events, (\d+) checkpoints \(checkpoints signed by --public-key [0-9a-f]{16}, newest at seq \d+, [0-9TZ:-]+\): clean`)
	out, code := cli("audit", "verify", "--public-key", keyFile+".pub")
	m := summary.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("audit verify through the API: exit %d\n%s", code, out)
	}
	events, _ := strconv.Atoi(m[1])
	cps, _ := strconv.Atoi(m[2])
	if int64(events) < acked.Load() || cps < rounds {
		t.Errorf("verify saw %d events and %d checkpoints; want at least the %d acknowledged changes and one checkpoint a round", events, cps, acked.Load())
	}
	t.Logf("audit verify: %s", strings.TrimSpace(out))

	export, code := cli("audit", "export")
	if code != 0 {
		t.Fatalf("audit export: exit %d\n%s", code, export)
	}
	file := filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(file, []byte(export), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runLatchkey(t, binPath, "audit", "verify", "--file", file, "--public-key", keyFile+".pub"); code != 0 || summary.FindString(out) == "" {
		t.Fatalf("audit verify --file: exit %d\n%s", code, out)
	}

	// The copy kept elsewhere, edited: one event's actor, in the middle.
	lines := strings.Split(export, "\n")
	target := 0
	for i, l := range lines {
		if strings.Contains(l, `"seq":`+strconv.Itoa(events/2)+`,`) && strings.HasPrefix(l, `{"audit_event"`) {
			target = i
		}
	}
	if target == 0 {
		t.Fatalf("no event of seq %d in the export", events/2)
	}
	lines[target] = strings.Replace(lines[target], `"actor":"admin"`, `"actor":"mallory"`, 1)
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("event seq %d altered (hash mismatch)", events/2)
	if out, code := runLatchkey(t, binPath, "audit", "verify", "--file", file, "--public-key", keyFile+".pub"); code != 1 || !strings.Contains(out, want) {
		t.Errorf("audit verify --file on an edited export: exit %d, want 1 naming %q\n%s", code, want, out)
	}
}
