package manage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/latchkey/latchkey"
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Destinations applies the webhook destination policy: when a webhook's
// URL is set (CheckURL) and on every connection a delivery makes
// (DialContext). The zero value applies the default policy with the
// system's resolver.
type Destinations struct {
	Policy latchkey.DestinationPolicy
	// Resolver resolves host names, at creation and at every delivery
	// (default net.DefaultResolver).
	Resolver Resolver
	// LookupTimeout bounds one resolution (default 5s), DialTimeout the
	// connection to a destination, every address tried included (default
	// 10s, below DefaultDeliveryTimeout, so that a connection that cannot
	// be made is reported as such and not as a slow receiver).
	LookupTimeout, DialTimeout time.Duration
}

func (d *Destinations) resolver() Resolver {
	if d.Resolver != nil {
		return d.Resolver
	}
	return net.DefaultResolver
}

func (d *Destinations) lookupTimeout() time.Duration {
	if d.LookupTimeout > 0 {
		return d.LookupTimeout
	}
	return 5 * time.Second
}

func (d *Destinations) dialTimeout() time.Duration {
	if d.DialTimeout > 0 {
		return d.DialTimeout
	}
	return 10 * time.Second
}

const openHint = "the server's operator can open the range with latchkey serve --webhook-allow-cidr"

// CheckURL checks a webhook URL that ValidateWebhookURL accepted against
// the policy: an IP address in the URL, or every address its host name
// resolves to. A name that does not resolve is accepted, since the check
// at delivery is the one that counts. Returns EDESTINATION, with a message
// that names the rule but never an address a name resolved to.
func (d *Destinations) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return latchkey.Errorf(latchkey.EINVALID, "url must be an http or https URL such as https://hooks.example.com/latchkey")
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if rule, refused := d.Policy.Refuses(a); refused {
			return latchkey.Errorf(latchkey.EDESTINATION, "url: %s is not an allowed webhook destination: %s; %s", host, rule, openHint)
		}
		return nil
	}
	addrs := latchkey.ReservedHostAddrs(host)
	if addrs == nil {
		lctx, cancel := context.WithTimeout(ctx, d.lookupTimeout())
		defer cancel()
		if addrs, err = d.resolver().LookupNetIP(lctx, "ip", host); err != nil {
			return nil
		}
	}
	for _, a := range addrs {
		if rule, refused := d.Policy.Refuses(a); refused {
			return latchkey.Errorf(latchkey.EDESTINATION, "url: %s resolves to an address that is not an allowed webhook destination: %s; %s", host, rule, openHint)
		}
	}
	return nil
}

// refusedError is a connection the policy refused. Its text names the
// address, so it goes to the debug log only; the delivery log says
// "destination not allowed".
type refusedError struct {
	host string
	addr netip.Addr
	rule latchkey.DestinationRule
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("webhook destination %s (%s) is refused: %s", e.host, e.addr, e.rule)
}

// dialError is a connection that could not be made: the name did not
// resolve, or no address accepted the connection in time.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connecting: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// DialContext connects to addr ("host:port") for a delivery. It resolves
// the host itself, refuses the connection if any of its addresses is
// refused, and connects to a checked address, never to the name: a name
// that resolves elsewhere between the check and the connection (DNS
// rebinding) cannot slip through. The socket's address is checked once
// more just before connect, whatever the path to it.
func (d *Destinations) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	st, _ := ctx.Value(attemptKey{}).(*attemptState)
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &dialError{err}
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return nil, &dialError{fmt.Errorf("port %q: %w", p, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, d.dialTimeout())
	defer cancel()
	addrs, err := d.lookup(ctx, host)
	if err != nil {
		return nil, &dialError{err}
	}
	if len(addrs) == 0 {
		return nil, &dialError{fmt.Errorf("%s has no address", host)}
	}
	for _, a := range addrs {
		if rule, refused := d.Policy.Refuses(a); refused {
			st.refuse()
			return nil, &refusedError{host, a, rule}
		}
	}
	dialer := &net.Dialer{KeepAlive: 30 * time.Second, Control: d.control(host, st)}
	var errs []error
	for _, a := range addrs {
		c, err := dialer.DialContext(ctx, network, netip.AddrPortFrom(a.WithZone("").Unmap(), uint16(port)).String())
		if err == nil {
			st.connect()
			return c, nil
		}
		var re *refusedError
		if errors.As(err, &re) {
			return nil, re
		}
		errs = append(errs, err)
	}
	return nil, &dialError{errors.Join(errs...)}
}

// lookup returns the addresses of host: itself when it is an address, the
// reserved addresses of localhost and metadata names, or what the
// resolver says.
func (d *Destinations) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if addrs := latchkey.ReservedHostAddrs(host); addrs != nil {
		return addrs, nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.lookupTimeout())
	defer cancel()
	return d.resolver().LookupNetIP(ctx, "ip", host)
}

// control checks the address a socket is about to connect to.
func (d *Destinations) control(host string, st *attemptState) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			st.refuse()
			return &refusedError{host: host, rule: latchkey.DestinationRule{Kind: "unparsable " + address}}
		}
		if rule, refused := d.Policy.Refuses(ap.Addr()); refused {
			st.refuse()
			return &refusedError{host, ap.Addr(), rule}
		}
		return nil
	}
}

// newTransport returns the transport of webhook deliveries: every
// connection through dial, and no proxy, whatever HTTP_PROXY says, since
// a proxy would connect to the destination beyond the policy's check.
func newTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dial,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           64,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// attemptState is what one delivery attempt learned on its way, which
// decides the message the delivery log shows. It travels in the request's
// context, whose values reach the dialler.
type attemptState struct {
	refused, connected, tlsFailed atomic.Bool
}

type attemptKey struct{}

func (s *attemptState) refuse() {
	if s != nil {
		s.refused.Store(true)
	}
}

func (s *attemptState) connect() {
	if s != nil {
		s.connected.Store(true)
	}
}

// The messages of the delivery log. They are all it says of a failure
// before an HTTP answer: no address, no operating system error, so that
// an admin cannot tell a closed port from a filtered one or a missing
// host, or learn what an internal name resolves to.
const (
	msgNotAllowed  = "destination not allowed"
	msgConnect     = "connection failed"
	msgTLS         = "TLS handshake failed"
	msgTimeout     = "timed out"
	msgInterrupted = "interrupted"
)

// publicError is the delivery log's message for a request that got no
// HTTP answer. parent is the dispatcher's context (its end is a
// shutdown), err the client's error.
func publicError(parent context.Context, st *attemptState, err error) string {
	var re *refusedError
	switch {
	case st.refused.Load() || errors.As(err, &re):
		return msgNotAllowed
	case parent.Err() != nil:
		return msgInterrupted
	case st.tlsFailed.Load():
		return msgTLS
	case !st.connected.Load():
		// Whether refused, unreachable, unresolved or not answered in
		// time: the same words for all.
		return msgConnect
	case isTimeout(err):
		return msgTimeout
	}
	return msgConnect
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
