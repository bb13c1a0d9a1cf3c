package auditstream

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// tcpState reads the connection's TCP state, unacknowledged segments and
// bytes still in its send queue (TCP_INFO and SIOCOUTQ).
func tcpState(c *tls.Conn) (state uint8, unacked uint32, queued int, err error) {
	tc, ok := c.NetConn().(*net.TCPConn)
	if !ok {
		return 0, 0, 0, errors.New("not a TCP connection")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, 0, 0, err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); serr != nil {
			return
		}
		state, unacked = info.State, info.Unacked
		queued, serr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	})
	if err == nil {
		err = serr
	}
	return state, unacked, queued, err
}

// tcpEstablished is Linux's TCP_ESTABLISHED.
const tcpEstablished = 1

// established reports whether the connection is still open both ways: a
// receiver that closed its end (a restart) leaves it in CLOSE_WAIT.
func established(c *tls.Conn) bool {
	st, _, _, err := tcpState(c)
	return err == nil && st == tcpEstablished
}

// acked waits until the receiver's TCP has acknowledged every byte
// written, the connection breaks, or deadline passes.
func acked(ctx context.Context, c *tls.Conn, deadline time.Time) error {
	wait := time.Millisecond
	for {
		st, unacked, queued, err := tcpState(c)
		switch {
		case err != nil:
			return err
		case st != tcpEstablished:
			return errors.New("the receiver closed the connection before acknowledging what was sent")
		case unacked == 0 && queued == 0:
			return nil
		case time.Now().After(deadline):
			return errors.New("the receiver did not acknowledge what was sent in time")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
