package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// process is a server this program started: latchkey or a baseline.
type process struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	// ready is how long the process took to print its listening line.
	ready  time.Duration
	url    string // the first URL it listens on
	lines  chan string
	mu     sync.Mutex
	output bytes.Buffer // stdout and stderr, for errors
	exited chan struct{}
}

// startProcess runs cmd and waits until a line of its output matches
// listenRE, whose first group is the URL it serves.
func startProcess(name string, cmd *exec.Cmd, listenRE *regexp.Regexp, timeout time.Duration) (*process, error) {
	p := &process{name: name, cmd: cmd, lines: make(chan string, 64), exited: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.output.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil && !sent {
				found <- m[1]
				sent = true
			}
			select {
			case p.lines <- line:
			default:
			}
		}
	}()
	select {
	case u := <-found:
		p.ready = time.Since(p.started)
		p.url = u
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%s exited before listening:\n%s", name, p.log())
	case <-time.After(timeout):
		p.stop()
		return nil, fmt.Errorf("%s did not listen within %s:\n%s", name, timeout, p.log())
	}
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// addr is the host:port of the process's URL.
func (p *process) addr() string {
	_, a, _ := strings.Cut(p.url, "://")
	return strings.TrimSuffix(a, "/")
}

// stop ends the process with SIGTERM, then SIGKILL after 10 seconds.
func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// cpu returns the CPU time (user + system, all threads) the process has
// used, from /proc/PID/stat.
func (p *process) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", p.cmd.Process.Pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", p.cmd.Process.Pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", p.cmd.Process.Pid)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// rss returns the process's resident memory in bytes, from
// /proc/PID/status.
func (p *process) rss() (int64, error) { return p.status("VmRSS:") }

// peakRSS returns the most resident memory the process has had (VmHWM).
func (p *process) peakRSS() (int64, error) { return p.status("VmHWM:") }

// status reads one "field: N kB" line of /proc/PID/status, in bytes.
func (p *process) status(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", p.cmd.Process.Pid, field)
}

// loadavg returns the machine's load averages ("?" where unknown).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// schedstat is what the kernel counted of the threads of some processes
// (/proc/PID/task/TID/schedstat): time waiting on a run queue for a core,
// and times run (each wake-up or preemption), by thread.
type schedstat map[string][2]int64

// add adds the threads of process pid to s.
func (s schedstat) add(pid int) {
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return
	}
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, d.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 3 {
			wait, _ := strconv.ParseInt(f[1], 10, 64)
			runs, _ := strconv.ParseInt(f[2], 10, 64)
			s[d.Name()] = [2]int64{wait, runs}
		}
	}
}

// since returns the waiting and the times run between before and s, over
// the threads s holds (a thread that ended meanwhile is not counted; one
// that started counts from zero).
func (s schedstat) since(before schedstat) (wait time.Duration, runs int64) {
	for tid, v := range s {
		b := before[tid]
		wait += time.Duration(v[0] - b[0])
		runs += v[1] - b[1]
	}
	return wait, runs
}

// sched returns the process's threads' scheduler counts.
func (p *process) sched() schedstat {
	s := schedstat{}
	s.add(p.cmd.Process.Pid)
	return s
}
