package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/spf13/cobra"
)

func newRestoreCmd() *cobra.Command {
	var url, from string
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Replace the SQLite database with a backup (the server must be stopped)",
		Long: `Replace the SQLite database with a file that 'latchkey backup' wrote.

restore refuses while any process has the database open (a running latchkey
serve, a sqlite3 shell): stop the server first. It checks the backup before
it touches anything (integrity check; a schema this latchkey knows), and it
deletes nothing: the database it replaces is renamed, with its WAL, to
FILE.before-restore-TIMESTAMP.

A restore goes back in time: keys deactivated or deleted since the backup
are Active again. Replay those revocations before serving traffic (see
"After any restore" in docs/operations.md).

PostgreSQL databases are restored with pg_restore: see "Backup and restore"
in docs/operations.md.

EXAMPLES
  systemctl stop latchkey
  latchkey restore --from /var/backups/latchkey-2026-05-01.db
  systemctl start latchkey

  latchkey restore --database-url sqlite:/var/lib/latchkey/latchkey.db --from latchkey.db.bak`,
		Args: fileFlagOnly("--from"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return cli.UsageErrorf("--from is required, e.g. --from /var/backups/latchkey-2026-05-01.db")
			}
			path, err := sqlitePath(url, "restore", "pg_restore")
			if err != nil {
				return err
			}
			r, err := sqlite.Restore(cmd.Context(), from, path, time.Now())
			var inUse *sqlite.InUseError
			switch {
			case errors.As(err, &inUse):
				return fmt.Errorf("restore refused, nothing was changed: %w; stop it first (systemctl stop latchkey, podman stop ...), then run restore again", err)
			case errors.Is(err, fs.ErrNotExist) && !fileExists(from):
				return cli.UsageErrorf("--from %s: no such file", from)
			case err != nil:
				return fmt.Errorf("restore from %s refused, nothing was changed: %w", from, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Restored %s to sqlite:%s: schema version %d, %d access keys, integrity check ok.\n",
				from, r.Path, r.SchemaVersion, r.AccessKeys)
			if r.Kept != "" {
				fmt.Fprintf(out, "The database it replaced is kept as %s.\n", r.Kept)
			}
			fmt.Fprintln(out, `Before serving traffic, replay the revocations made since the backup (see "After any restore" in docs/operations.md).`)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup file to restore")
	cmd.Flags().StringVar(&url, "database-url", envOr("LATCHKEY_DATABASE_URL", DefaultDatabaseURL()), "the SQLite database to replace, as serve names it (env LATCHKEY_DATABASE_URL)")
	return cmd
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
