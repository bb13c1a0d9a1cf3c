package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlite"
)

// DefaultDatabaseURL returns the embedded database's default location:
// $XDG_DATA_HOME/latchkey/latchkey.db, or ~/.local/share/latchkey/latchkey.db.
func DefaultDatabaseURL() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "sqlite:latchkey.db"
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return "sqlite:" + filepath.Join(dir, "latchkey", "latchkey.db")
}

// openStore opens the store named by a database URL.
func openStore(ctx context.Context, url string) (latchkey.Store, string, error) {
	if path, ok := sqlite.ParseURL(url); ok {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, "", err
		}
		return s, "sqlite:" + path, nil
	}
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		return openPostgres(ctx, url)
	}
	return nil, "", fmt.Errorf("--database-url %q: expected sqlite:/path/to/file.db or postgres://user@host/db", url)
}

func parsePrefixes(flag string, vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is neither an IP address nor a CIDR range (e.g. 10.0.0.0/8)", flag, s)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out, nil
}
