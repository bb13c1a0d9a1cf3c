package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"
)

// wrk is the closed-loop load generator forward auth is measured with
// (Debian's wrk, in C): with -wrk set (the default when wrk is on PATH)
// every closed-loop run of the pairs uses it instead of closedLoop. Both
// do the same thing, -conns keep-alive connections each sending its next
// call when the last is answered, over the same requests (the bytes of
// target.mk, one per hot key); wrk costs fewer cycles per call than the Go
// client, which on a machine where generator and servers share the cores
// leaves the servers more of them, and it is the tool the figures of
// other projects come from.
//
// The requests reach wrk through a Lua script that reads them from a file
// (each as its length in decimal, a newline, and its bytes) and sends them
// in turn, each thread from its own starting point. wrk does not report
// statuses, only how many answers were not 2xx or 3xx: those count as
// status -1, which outcome.check refuses.
const wrkScript = `
local reqs = {}
local idx = 0
function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local nl = data:find("\n", pos, true)
    local len = tonumber(data:sub(pos, nl - 1))
    reqs[#reqs + 1] = data:sub(nl + 1, nl + len)
    pos = nl + len + 1
  end
  idx = math.random(#reqs)
end
function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
`

// wrkDefault is wrk's path when it is installed, "" otherwise.
func wrkDefault() string {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return ""
	}
	return p
}

var (
	wrkTotalRE  = regexp.MustCompile(`(\d+) requests in ([0-9.]+[a-z]+),`)
	wrkSockRE   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xxRE = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// wrkLoop runs wrk against t for d on conns connections, over n of t's
// requests, and returns the answers as closedLoop does.
func wrkLoop(ctx context.Context, bin string, t target, conns int, d time.Duration, n int) (*outcome, time.Duration, error) {
	dir, err := os.MkdirTemp("", "bench-load-wrk")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	var data, buf []byte
	for i := range max(n, 1) {
		buf = t.mk(i, buf[:0])
		data = strconv.AppendInt(data, int64(len(buf)), 10)
		data = append(data, '\n')
		data = append(data, buf...)
	}
	reqs, script := filepath.Join(dir, "requests"), filepath.Join(dir, "requests.lua")
	if err := os.WriteFile(reqs, data, 0o600); err != nil {
		return nil, 0, err
	}
	if err := os.WriteFile(script, []byte(wrkScript), 0o600); err != nil {
		return nil, 0, err
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	threads := min(runtime.NumCPU(), conns)
	cmd := exec.CommandContext(ctx, bin, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "10s", "-s", script, "http://"+t.addr+"/", "--", reqs)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: wrk: %v\n%s", t.name, err, b)
	}
	return parseWrk(string(b))
}

// parseWrk reads wrk's summary: the answers, the socket errors and how
// long the load ran.
func parseWrk(s string) (*outcome, time.Duration, error) {
	m := wrkTotalRE.FindStringSubmatch(s)
	if m == nil {
		return nil, 0, fmt.Errorf("wrk printed no request count:\n%s", s)
	}
	total, _ := strconv.Atoi(m[1])
	elapsed, err := time.ParseDuration(m[2])
	if err != nil {
		return nil, 0, fmt.Errorf("wrk's duration %q: %v", m[2], err)
	}
	out := &outcome{statuses: map[int]int{}}
	if m := wrkNon2xxRE.FindStringSubmatch(s); m != nil {
		bad, _ := strconv.Atoi(m[1])
		out.statuses[-1] = bad
		total -= bad
	}
	out.statuses[wrkOK] = total
	if m := wrkSockRE.FindStringSubmatch(s); m != nil {
		for _, f := range m[1:] {
			k, _ := strconv.Atoi(f)
			out.errs += k
		}
		if out.errs > 0 {
			out.firstErr = fmt.Errorf("wrk: %s", m[0])
		}
	}
	return out, elapsed, nil
}

// wrkOK stands for "a 2xx or 3xx answer" in an outcome from wrk; check
// accepts it as the status the target wants.
const wrkOK = 0
