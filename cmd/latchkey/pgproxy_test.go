package main

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// pgProxy forwards TCP connections to PostgreSQL and simulates its
// outages without touching the server, which other tests share: down
// resets every connection and refuses new ones, as a stopped server does;
// partition leaves connections open but carries no byte either way (nor
// answers new ones) until up, as a network partition does.
type pgProxy struct {
	t      *testing.T
	addr   string
	target string

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	held    bool
	release chan struct{} // closed when a partition ends
}

// newPGProxy starts a proxy to the server of dbURL and returns it with
// dbURL rewritten to go through it.
func newPGProxy(t *testing.T, dbURL string) (*pgProxy, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{t: t, target: u.Host, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.down() })
	u.Host = p.addr
	return p, u.String()
}

func (p *pgProxy) serve(ln net.Listener) {
	p.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *pgProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// gate returns nil while bytes may flow, or a channel closed when the
// partition ends.
func (p *pgProxy) gate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		return p.release
	}
	return nil
}

func (p *pgProxy) forward(client net.Conn) {
	if !p.track(client) {
		return
	}
	if g := p.gate(); g != nil {
		<-g
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(server) {
		client.Close()
		return
	}
	go p.pipe(server, client)
	p.pipe(client, server)
}

// pipe copies from src to dst, holding the bytes during a partition.
func (p *pgProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if g := p.gate(); g != nil {
				<-g
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// down closes the listener and resets every connection.
func (p *pgProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // reset, as a killed server's kernel does
		}
		c.Close()
	}
	clear(p.conns)
	if p.held {
		p.held = false
		close(p.release)
	}
}

// partition stops all traffic, in both directions, until up.
func (p *pgProxy) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.held {
		p.held = true
		p.release = make(chan struct{})
	}
}

// up ends a partition, or listens again on the same address after down.
func (p *pgProxy) up() {
	p.t.Helper()
	p.mu.Lock()
	if p.held {
		p.held = false
		close(p.release)
	}
	listening := p.ln != nil
	p.mu.Unlock()
	if listening {
		return
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: listening again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.serve(ln)
	p.mu.Unlock()
}
