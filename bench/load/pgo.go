package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// pgoLeftOut are functions whose samples the profile leaves out (go tool
// pprof -ignore), with why: a profile that showed them hot would cost more
// than it gains.
//
// crypto/sha256.Sum256: with its samples, PGO devirtualizes its calls
// through hash.Hash behind a type check whose fallback keeps the interface
// call, so the digest escapes: one heap allocation of 128 bytes a
// verification, where the build without a profile allocates nothing
// (TestVerifyDoesNotAllocate, compiled with the profile in .ci/run).
var pgoLeftOut = []string{`^crypto/sha256\.Sum256$`}

// pgoProfile writes to c.pgo the profile `go build` uses for profile-guided
// optimization when it is cmd/latchkey/default.pgo: latchkey serve on
// c.keys keys (a build of ./cmd/latchkey, or c.binary), profiled under
// closed-loop load on each surface a verification reaches latchkey through
// over HTTP (forward auth on its own listener, --authorize-addr, and on
// the API's, POST /v1/verify, the reverse proxy), one CPU
// profile of -cpuprofile-duration each, in turn, the profiles merged with
// `go tool pprof -proto`, less pgoLeftOut. Each surface is profiled for
// the same time under a load that keeps latchkey busy throughout, so that
// none dominates the compiler's choices. The file is replaced only once
// the profile is whole (written beside it, then renamed): a failed run
// leaves the old one. It measures nothing.
func pgoProfile(ctx context.Context, c config) error {
	// A path that cannot be written fails now, not after the seeding.
	tmp, err := os.CreateTemp(filepath.Dir(c.pgo), ".pgo-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	defer tmp.Close()
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
	lk, proxyURL, err := startLatchkey(bin, dir, db.dbPath, upstream.url, "--authorize-addr", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer lk.stop()
	authzURL, err := lk.await(authzRE, "forward auth")
	if err != nil {
		return err
	}

	// A profile of refusals would optimise the wrong paths: each load is
	// checked first for the answer of an allowed call (has: in its body).
	loads := []struct {
		t   target
		has []byte
	}{
		{target{"latchkey GET /v1/authorize", hostOf(authzURL), lk, authorizeReqs(hot), 200}, nil},
		{target{"latchkey GET /v1/authorize on the API listener", lk.addr(), lk, authorizeReqs(hot), 200}, nil},
		{target{"latchkey POST /v1/verify", lk.addr(), lk, verifyReqs(hot, db.verifier), 200}, []byte(`"valid":true`)},
		{target{"latchkey reverse proxy", hostOf(proxyURL), lk, proxyReqs(hot), 200}, nil},
	}
	args := []string{"tool", "pprof", "-proto"}
	for _, re := range pgoLeftOut {
		args = append(args, "-ignore="+re)
	}
	for i, l := range loads {
		t := l.t
		if err := preflight(t, l.has); err != nil {
			return err
		}
		file := filepath.Join(dir, fmt.Sprintf("%d.prof", i))
		c.logf("CPU profile of %s under load (%s)", t.name, c.profDur)
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
	if _, err := tmp.Write(merged); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), c.pgo); err != nil {
		return err
	}
	c.logf("wrote %s (%d bytes): the %d profiles merged", c.pgo, len(merged), len(loads))
	return nil
}
