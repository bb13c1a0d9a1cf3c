package auditstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// Syslog facility and severities (RFC 5424 section 6.2.1). Facility 13 is
// "log audit".
const (
	facilityLogAudit = 13
	severityAlert    = 1
	severityWarning  = 4
	severityNotice   = 5
)

// syslogTimeout bounds a connection, and one write with its acknowledgement.
const syslogTimeout = 10 * time.Second

// syslogTLS is the client configuration of a syslog receiver at addr.
func syslogTLS(c Config, addr string) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(addr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.SyslogCA != "" {
		pem, err := os.ReadFile(c.SyslogCA)
		if err != nil {
			return nil, fmt.Errorf("--audit-syslog-ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--audit-syslog-ca %s: no PEM certificate in it", c.SyslogCA)
		}
	}
	if (c.SyslogCert == "") != (c.SyslogKey == "") {
		return nil, errors.New("--audit-syslog-cert and --audit-syslog-key go together: give both or neither")
	}
	if c.SyslogCert != "" {
		cert, err := tls.LoadX509KeyPair(c.SyslogCert, c.SyslogKey)
		if err != nil {
			return nil, fmt.Errorf("--audit-syslog-cert/--audit-syslog-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// syslogSink sends each event as an RFC 5424 message, framed by octet
// counting (RFC 5425, RFC 6587 section 3.4.1), over one TLS connection it
// keeps open. Syslog has no acknowledgement of its own: a write counts as
// taken once the receiver's TCP has acknowledged every byte of it (see
// acked), and a connection that broke before that is dialled again and the
// events sent again.
type syslogSink struct {
	name, addr string
	tls        *tls.Config
	hostname   string
	pid        int

	mu   sync.Mutex
	conn *tls.Conn
}

func newSyslogSink(name, addr string, cfg *tls.Config) *syslogSink {
	h, err := os.Hostname()
	if err != nil {
		h = ""
	}
	return &syslogSink{name: name, addr: addr, tls: cfg, hostname: h, pid: os.Getpid()}
}

func (s *syslogSink) Name() string { return s.name }

func (s *syslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

func (s *syslogSink) Write(ctx context.Context, events []*latchkey.AuditEvent) error {
	var buf bytes.Buffer
	for _, e := range events {
		line, err := Record(e)
		if err != nil {
			return err
		}
		msg := syslogMessage(e, s.hostname, s.pid, bytes.TrimSuffix(line, []byte{'\n'}))
		buf.WriteString(strconv.Itoa(len(msg)))
		buf.WriteByte(' ')
		buf.Write(msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !established(s.conn) {
		// The receiver closed it (a restart): what was written before
		// was acknowledged; start afresh.
		s.conn.Close()
		s.conn = nil
	}
	if s.conn == nil {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: syslogTimeout, KeepAlive: 30 * time.Second}, Config: s.tls}
		dctx, cancel := context.WithTimeout(ctx, syslogTimeout)
		c, err := d.DialContext(dctx, "tcp", s.addr)
		cancel()
		if err != nil {
			return fmt.Errorf("connecting to syslog receiver %s: %w", s.addr, err)
		}
		s.conn = c.(*tls.Conn)
	}
	deadline := time.Now().Add(syslogTimeout)
	err := s.conn.SetWriteDeadline(deadline)
	if err == nil {
		_, err = s.conn.Write(buf.Bytes())
	}
	if err == nil {
		err = acked(ctx, s.conn, deadline)
	}
	if err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("sending to syslog receiver %s: %w", s.addr, err)
	}
	return nil
}

// syslogMessage is the RFC 5424 message of e, with line (the event's JSON
// record) as MSG:
//
//	<PRI>1 TIMESTAMP HOSTNAME latchkey PROCID MSGID - MSG
//
// PRI is facility 13 (log audit) with severity alert for a canary alert,
// warning for an exposed key and notice otherwise; TIMESTAMP is the
// event's time in UTC with microseconds; MSGID is the audit action. There
// is no structured data: the JSON holds every field. MSG is plain JSON
// without a byte order mark, which RFC 5424 allows (MSG-ANY).
func syslogMessage(e *latchkey.AuditEvent, hostname string, pid int, line []byte) []byte {
	sev := severityNotice
	switch e.Action {
	case latchkey.ActionCanaryTriggered:
		sev = severityAlert
	case latchkey.ActionAccessKeyExposed:
		sev = severityWarning
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s latchkey %d %s - ", facilityLogAudit*8+sev,
		e.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), headerField(hostname, 255), pid, headerField(e.Action, 32))
	b.Write(line)
	return b.Bytes()
}

// headerField is s as an RFC 5424 header field: printable US-ASCII
// without spaces, at most max characters; "-" (NILVALUE) when empty.
func headerField(s string, max int) string {
	out := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(out) < max; i++ {
		if c := s[i]; c >= 33 && c <= 126 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}
