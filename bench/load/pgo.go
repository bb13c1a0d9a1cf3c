package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// pgoSurfaces are the loads the profile for profile-guided optimization
// is taken under, one CPU profile each, of -cpuprofile-duration: every
// surface a verification reaches latchkey through over HTTP, the way
// bench/load measures it.
var pgoSurfaces = []string{"forward auth", "verify", "reverse proxy"}

// pgoProfile writes to c.pgo the profile `go build` uses for profile-guided
// optimization when it is cmd/latchkey/default.pgo: latchkey serve on
// c.keys keys (a build of ./cmd/latchkey, or c.binary), profiled under
// closed-loop load on each of pgoSurfaces in turn, the profiles merged with
// `go tool pprof -proto`. Each surface gets about the same number of
// samples (the load keeps latchkey busy for the whole profile), so none
// dominates the compiler's choices. It measures nothing.
func pgoProfile(ctx context.Context, c config) error {
	dir, err := os.MkdirTemp("", "latchkey-bench-pgo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := c.binary
	if bin == "" {
		c.logf("building latchkey")
		if bin, err = buildLatchkey(dir); err != nil {
			return err
		}
	}
	c.logf("seeding %d keys", c.keys)
	db, err := seed(ctx, dir, c.keys, 0)
	if err != nil {
		return err
	}
	hot := hotSet(db.secrets, c.hot)
	upstream, err := startBaseline("upstream", "", 0)
	if err != nil {
		return err
	}
	defer upstream.stop()
	lk, proxyURL, err := startLatchkey(bin, dir, db.dbPath, upstream.url)
	if err != nil {
		return err
	}
	defer lk.stop()

	loads := map[string]target{
		"forward auth":  {"latchkey GET /v1/authorize", lk.addr(), lk, authorizeReqs(hot), 200},
		"verify":        {"latchkey POST /v1/verify", lk.addr(), lk, verifyReqs(hot, db.verifier), 200},
		"reverse proxy": {"latchkey reverse proxy", hostOf(proxyURL), lk, proxyReqs(hot), 200},
	}
	args := []string{"tool", "pprof", "-proto"}
	for i, s := range pgoSurfaces {
		t := loads[s]
		// A profile of refusals would optimise the wrong paths.
		var has []byte
		if s == "verify" {
			has = []byte(`"valid":true`)
		}
		if err := preflight(t, has); err != nil {
			return err
		}
		file := filepath.Join(dir, fmt.Sprintf("%d.prof", i))
		c.logf("CPU profile of latchkey under %s load (%s)", s, c.profDur)
		if err := profileUnderLoad(ctx, lk, db.operator, t, file, c); err != nil {
			return err
		}
		args = append(args, file)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	merged, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go tool pprof -proto: %v\n%s", err, stderr.Bytes())
	}
	if err := os.WriteFile(c.pgo, merged, 0o644); err != nil {
		return err
	}
	c.logf("wrote %s (%d bytes): the merged profile of %v", c.pgo, len(merged), pgoSurfaces)
	return nil
}
