// Command latchkey is the one latchkey binary: the server (latchkey serve),
// the CLI for managing keys, and operator commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/latchkey/latchkey/internal/cli"
	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := addServerCmds(cli.NewRoot())
	err := root.ExecuteContext(ctx)
	os.Exit(cli.ExitCode(err, func(msg string) { fmt.Fprintln(os.Stderr, msg) }))
}

// addServerCmds adds the commands that need the stores (serve, migrate,
// backup, restore) to the CLI's root.
func addServerCmds(root *cobra.Command) *cobra.Command {
	for _, c := range []*cobra.Command{newServeCmd(), newMigrateCmd(), newBackupCmd(), newRestoreCmd()} {
		c.GroupID = cli.GroupServer
		root.AddCommand(c)
	}
	return root
}
