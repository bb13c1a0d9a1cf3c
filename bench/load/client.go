package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection that sends requests given as
// bytes and reads the answers with a minimal parser. It costs the load
// generator a few microseconds a call, a fraction of net/http's client,
// so that on a machine where generator and servers share two cores the
// servers get most of the CPU (wrk does the same in C).
type conn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	buf  []byte
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{addr: addr, c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
	}
}

// do sends one request and reads its answer. It returns the status and,
// when keepBody is set, the body (valid until the next call).
func (c *conn) do(req []byte, keepBody bool) (int, []byte, error) {
	if c.c == nil {
		nc, err := dial(c.addr)
		if err != nil {
			return 0, nil, err
		}
		*c = *nc
	}
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.c.Write(req); err != nil {
		c.reset()
		return 0, nil, err
	}
	status, body, closeAfter, err := c.read(keepBody)
	if err != nil || closeAfter {
		c.reset()
	}
	return status, body, err
}

func (c *conn) reset() {
	if c.c != nil {
		c.c.Close()
	}
	c.c = nil
}

var errBadResponse = errors.New("malformed HTTP response")

func (c *conn) read(keepBody bool) (status int, body []byte, closeAfter bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	// HTTP/1.1 204 No Content
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, errBadResponse
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, errBadResponse
	}
	length, chunked := -1, false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, nil, false, errBadResponse
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, nil, false, errBadResponse
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			closeAfter = asciiEqualFold(value, "close")
		}
	}
	c.buf = c.buf[:0]
	switch {
	case status == 204 || status == 304:
	case chunked:
		for {
			l, err := c.br.ReadSlice('\n')
			if err != nil {
				return 0, nil, false, err
			}
			l, _, _ = bytes.Cut(bytes.TrimRight(l, "\r\n"), []byte(";"))
			n, err := strconv.ParseInt(string(l), 16, 64)
			if err != nil {
				return 0, nil, false, errBadResponse
			}
			if err := c.body(int(n)+2, keepBody); err != nil { // the chunk and its CRLF
				return 0, nil, false, err
			}
			if n == 0 {
				break
			}
		}
	case length >= 0:
		if err := c.body(length, keepBody); err != nil {
			return 0, nil, false, err
		}
	default:
		return 0, nil, false, errors.New("response without length")
	}
	return status, c.buf, closeAfter, nil
}

func (c *conn) body(n int, keep bool) error {
	if !keep {
		_, err := c.br.Discard(n)
		return err
	}
	start := len(c.buf)
	c.buf = slices.Grow(c.buf, n)[:start+n]
	_, err := io.ReadFull(c.br, c.buf[start:])
	return err
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// requests makes the bytes of the i-th request of a load; it must be safe
// for concurrent use.
type requests func(i int, buf []byte) []byte

// outcome counts the answers of a load by status.
type outcome struct {
	mu       sync.Mutex
	statuses map[int]int
	errs     int
	firstErr error
}

func (o *outcome) add(statuses map[int]int, errs int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.statuses == nil {
		o.statuses = map[int]int{}
	}
	for s, n := range statuses {
		o.statuses[s] += n
	}
	o.errs += errs
	if o.firstErr == nil {
		o.firstErr = err
	}
}

func (o *outcome) total() int {
	n := 0
	for _, c := range o.statuses {
		n += c
	}
	return n
}

// check returns an error unless every answer had status want.
func (o *outcome) check(want int) error {
	if o.errs > 0 {
		return fmt.Errorf("%d calls failed, the first with: %v", o.errs, o.firstErr)
	}
	for s, n := range o.statuses {
		if s != want && s != wrkOK {
			return fmt.Errorf("%d answers with status %d (want %d)", n, s, want)
		}
	}
	if o.total() == 0 {
		return errors.New("no answer")
	}
	return nil
}

// closedLoop keeps conns connections busy for d, each sending its next
// request as soon as the last one is answered: the highest rate the server
// sustains. It returns the answers and how long the load ran.
func closedLoop(ctx context.Context, addr string, conns int, d time.Duration, mk requests) (*outcome, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out := &outcome{}
	var wg sync.WaitGroup
	start := time.Now()
	for k := range conns {
		wg.Go(func() {
			c := &conn{addr: addr}
			defer c.close()
			statuses := map[int]int{}
			errs := 0
			var firstErr error
			var buf []byte
			for i := k; ctx.Err() == nil; i += conns {
				buf = mk(i, buf[:0])
				status, _, err := c.do(buf, false)
				if err != nil {
					if ctx.Err() == nil {
						errs++
						if firstErr == nil {
							firstErr = err
						}
					}
					continue
				}
				statuses[status]++
			}
			out.add(statuses, errs, firstErr)
		})
	}
	wg.Wait()
	return out, time.Since(start)
}

// openLoop sends rate requests per second for d over conns connections,
// each on a fixed schedule, and measures every latency from the moment the
// request was due, not from when it could be sent: a server that stalls is
// charged for every call that should have gone out meanwhile (the
// correction for coordinated omission that wrk2 makes). It returns the
// answers and the sorted latencies.
func openLoop(ctx context.Context, addr string, conns int, rate float64, d time.Duration, mk requests) (*outcome, []time.Duration) {
	out := &outcome{}
	period := time.Duration(float64(conns) / rate * float64(time.Second))
	start := time.Now().Add(10 * time.Millisecond)
	end := start.Add(d)
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for k := range conns {
		wg.Go(func() {
			c := &conn{addr: addr}
			defer c.close()
			// Connect before the schedule starts.
			if nc, err := dial(addr); err == nil {
				*c = *nc
			}
			statuses := map[int]int{}
			errs := 0
			var firstErr error
			var buf []byte
			lat := make([]time.Duration, 0, int(d/period)+1)
			offset := period * time.Duration(k) / time.Duration(conns)
			for i := 0; ctx.Err() == nil; i++ {
				due := start.Add(offset + time.Duration(i)*period)
				if !due.Before(end) {
					break
				}
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				buf = mk(k+i*conns, buf[:0])
				status, _, err := c.do(buf, false)
				lat = append(lat, time.Since(due))
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				statuses[status]++
			}
			out.add(statuses, errs, firstErr)
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(all)
	return out, all
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
