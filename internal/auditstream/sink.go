package auditstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/latchkey/latchkey"
)

// Config is what --audit-sink and the flags beside it say.
type Config struct {
	// Sinks are the --audit-sink values: "stdout", "file:PATH" or
	// "syslog+tls://HOST[:PORT]" (port 6514 by default).
	Sinks []string
	// Stdout is where the stdout sink writes.
	Stdout io.Writer
	// FileMaxBytes is the size at which a file sink's file is rotated;
	// FileKeep how many rotated files are kept (PATH.1 the newest).
	FileMaxBytes int64
	FileKeep     int
	// SyslogCA is a PEM file of the CAs a syslog receiver's certificate
	// must chain to ("": the system's); SyslogCert and SyslogKey, a
	// client certificate for receivers that ask for one.
	SyslogCA, SyslogCert, SyslogKey string
}

// Open makes the sinks of c. Its errors name the flag at fault and what
// it accepts.
func Open(c Config) ([]Sink, error) {
	var (
		out  []Sink
		seen = map[string]bool{}
	)
	for _, spec := range c.Sinks {
		if seen[spec] {
			return nil, fmt.Errorf("--audit-sink %q is given twice", spec)
		}
		seen[spec] = true
		switch {
		case spec == "stdout":
			w := c.Stdout
			if w == nil {
				w = os.Stdout
			}
			out = append(out, &writerSink{name: spec, w: w})
		case strings.HasPrefix(spec, "file:"):
			path := strings.TrimPrefix(spec, "file:")
			if path == "" || strings.HasSuffix(path, "/") {
				return nil, fmt.Errorf("--audit-sink %q: expected file:PATH naming a file, such as file:/var/log/latchkey/audit.jsonl", spec)
			}
			if c.FileMaxBytes < 1<<20 || c.FileKeep < 0 {
				return nil, fmt.Errorf("--audit-file-max-mb must be at least 1 and --audit-file-keep 0 or more")
			}
			out = append(out, &fileSink{name: spec, path: path, maxBytes: c.FileMaxBytes, keep: c.FileKeep})
		case strings.HasPrefix(spec, "syslog+tls://"):
			addr, err := syslogAddr(spec)
			if err != nil {
				return nil, err
			}
			cfg, err := syslogTLS(c, addr)
			if err != nil {
				return nil, err
			}
			out = append(out, newSyslogSink(spec, addr, cfg))
		default:
			return nil, fmt.Errorf("--audit-sink %q: expected stdout, file:PATH or syslog+tls://HOST[:PORT]", spec)
		}
	}
	if !hasSyslog(c.Sinks) && (c.SyslogCA != "" || c.SyslogCert != "" || c.SyslogKey != "") {
		return nil, errors.New("--audit-syslog-ca, --audit-syslog-cert and --audit-syslog-key need an --audit-sink syslog+tls://HOST[:PORT]")
	}
	return out, nil
}

// syslogAddr reads syslog+tls://HOST[:PORT], nothing more.
func syslogAddr(spec string) (string, error) {
	bad := fmt.Errorf("--audit-sink %q: expected syslog+tls://HOST[:PORT] (port 6514 by default), with no path, user or query", spec)
	u, err := url.Parse(spec)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", bad
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "6514"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return "", bad
	}
	return net.JoinHostPort(host, port), nil
}

// lines encodes events as JSON lines.
func lines(events []*latchkey.AuditEvent) ([]byte, error) {
	var buf bytes.Buffer
	for _, e := range events {
		b, err := Record(e)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// writerSink writes JSON lines to a stream (standard output), where a
// log collector takes them.
type writerSink struct {
	name string
	mu   sync.Mutex
	w    io.Writer
}

func (s *writerSink) Name() string { return s.name }
func (s *writerSink) Close() error { return nil }

func (s *writerSink) Write(_ context.Context, events []*latchkey.AuditEvent) error {
	b, err := lines(events)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.w.Write(b)
	return err
}

// fileSink appends JSON lines to a file, synced to disk before Write
// returns (so that a cursor never passes a line a power cut could take),
// and rotates it by size: PATH becomes PATH.1, PATH.1 becomes PATH.2, and
// so on up to keep files; the oldest is dropped.
type fileSink struct {
	name, path string
	maxBytes   int64
	keep       int

	mu   sync.Mutex
	f    *os.File
	size int64
}

func (s *fileSink) Name() string { return s.name }

func (s *fileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

func (s *fileSink) Write(_ context.Context, events []*latchkey.AuditEvent) error {
	b, err := lines(events)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.open(); err != nil {
		return err
	}
	if s.size > 0 && s.size+int64(len(b)) > s.maxBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	n, err := s.f.Write(b)
	s.size += int64(n)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// Reopened at the next write: what was half written stays, and
		// is written again whole (at least once).
		s.f.Close()
		s.f = nil
		return fmt.Errorf("writing %s: %w", s.path, err)
	}
	return nil
}

func (s *fileSink) open() error {
	if s.f != nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size = f, st.Size()
	return nil
}

func (s *fileSink) rotate() error {
	if err := s.f.Close(); err != nil {
		return err
	}
	s.f = nil
	if s.keep == 0 {
		if err := os.Remove(s.path); err != nil {
			return err
		}
	} else {
		for i := s.keep - 1; i >= 1; i-- {
			if err := os.Rename(fmt.Sprintf("%s.%d", s.path, i), fmt.Sprintf("%s.%d", s.path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := os.Rename(s.path, s.path+".1"); err != nil {
			return err
		}
	}
	if err := s.open(); err != nil {
		return err
	}
	// The renames are durable before lines go to the new file.
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func hasSyslog(specs []string) bool {
	for _, s := range specs {
		if strings.HasPrefix(s, "syslog+tls://") {
			return true
		}
	}
	return false
}
