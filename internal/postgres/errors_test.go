package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/latchkey/latchkey"
)

func TestMapError(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	tests := []struct {
		name string
		err  error
		want string // "" = not recognised
	}{
		{"unique violation", pg("23505"), latchkey.EEXISTS},
		{"foreign key violation", pg("23503"), latchkey.ENOTFOUND},
		{"check violation", pg("23514"), latchkey.EINVALID},
		{"not null violation", pg("23502"), latchkey.EINVALID},
		{"read-only transaction", pg("25006"), latchkey.EUNAVAILABLE},
		{"idle in transaction timeout", pg("25P03"), latchkey.EUNAVAILABLE},
		{"serialization failure", pg("40001"), latchkey.EUNAVAILABLE},
		{"deadlock", pg("40P01"), latchkey.EUNAVAILABLE},
		{"lock not available", pg("55P03"), latchkey.EUNAVAILABLE},
		{"connection failure", pg("08006"), latchkey.EUNAVAILABLE},
		{"too many connections", pg("53300"), latchkey.EUNAVAILABLE},
		{"disk full", pg("53100"), latchkey.EUNAVAILABLE},
		{"admin shutdown", pg("57P01"), latchkey.EUNAVAILABLE},
		{"cannot connect now", pg("57P03"), latchkey.EUNAVAILABLE},
		{"I/O error", pg("58030"), latchkey.EUNAVAILABLE},
		{"syntax error", pg("42601"), ""},
		{"undefined column", pg("42703"), ""},
		{"network error", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, latchkey.EUNAVAILABLE},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), latchkey.EUNAVAILABLE},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), latchkey.EUNAVAILABLE},
		{"bad connection", driver.ErrBadConn, latchkey.EUNAVAILABLE},
		{"deadline", context.DeadlineExceeded, latchkey.EUNAVAILABLE},
		{"something else", errors.New("boom"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapError(tt.err)
			if code := latchkey.ErrorCode(got); code != tt.want {
				t.Fatalf("mapError(%v) = %v, want code %q", tt.err, got, tt.want)
			}
			if got != nil && !errors.Is(got, tt.err) {
				t.Errorf("mapError(%v) = %v, which does not keep the cause", tt.err, got)
			}
		})
	}
}
