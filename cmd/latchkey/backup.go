package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/spf13/cobra"
)

func newBackupCmd() *cobra.Command {
	var url, to string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Copy the SQLite database to a file, consistently, while the server runs",
		Long: `Copy the SQLite database to a new file while latchkey serve keeps running and
writing. The copy is one read transaction (SQLite's VACUUM INTO): it holds
every change committed before the backup began and none after, it does not
hold up the server, and it is checked (integrity check, schema version)
before it is given its name, so the file appears complete or not at all.

The backup holds key digests (never secrets), the audit log and the webhook
signing secrets: it is written with mode 0600; keep it like the database.
It never overwrites a file. Restore it with 'latchkey restore'.

PostgreSQL databases are backed up with pg_dump: see "Backup and restore"
in docs/operations.md.

EXAMPLES
  latchkey backup --to /var/backups/latchkey-$(date +%F).db
  latchkey backup --database-url sqlite:/var/lib/latchkey/latchkey.db --to /mnt/backup/latchkey.db`,
		Args: fileFlagOnly("--to"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return cli.UsageErrorf("--to is required, e.g. --to latchkey-$(date +%%F).db")
			}
			path, err := sqlitePath(url, "backup", "pg_dump")
			if err != nil {
				return err
			}
			if !fileExists(path) {
				return cli.UsageErrorf("--database-url %s: there is no database file %s", url, path)
			}
			start := time.Now()
			snap, err := sqlite.Backup(cmd.Context(), path, to)
			switch {
			case errors.Is(err, fs.ErrExist):
				return cli.UsageErrorf("--to %s: the file exists; backup never overwrites a file, name a new one", to)
			case err != nil:
				return fmt.Errorf("backup of %s to %s: %w", path, to, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backed up sqlite:%s to %s in %s: %d bytes, schema version %d, %d access keys, integrity check ok.\n",
				path, snap.Path, time.Since(start).Round(time.Millisecond), snap.Bytes, snap.SchemaVersion, snap.AccessKeys)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the file to write; it must not exist")
	cmd.Flags().StringVar(&url, "database-url", envOr("LATCHKEY_DATABASE_URL", DefaultDatabaseURL()), "the SQLite database to back up, as serve names it (env LATCHKEY_DATABASE_URL)")
	return cmd
}

// sqlitePath returns the file of a sqlite: database URL given to backup or
// restore, and a usage error that names the PostgreSQL tool (tool) to use
// instead for a postgres: URL.
func sqlitePath(url, verb, tool string) (string, error) {
	if path, ok := sqlite.ParseURL(url); ok && path != ":memory:" {
		return path, nil
	}
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		return "", cli.UsageErrorf("--database-url names a PostgreSQL database: use %s for a %s (see \"Backup and restore\" in docs/operations.md)", tool, verb)
	}
	return "", cli.UsageErrorf("--database-url %q: expected sqlite:/path/to/file.db", url)
}

// fileFlagOnly refuses positional arguments with a usage error that says
// the file goes with flag.
func fileFlagOnly(flag string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return cli.UsageErrorf("%s takes no arguments, got %q; give the file with %s", cmd.CommandPath(), args[0], flag)
		}
		return nil
	}
}
