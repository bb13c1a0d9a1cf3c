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
	root := cli.NewRoot()
	for _, c := range []*cobra.Command{newServeCmd(), newMigrateCmd()} {
		c.GroupID = cli.GroupServer
		root.AddCommand(c)
	}
	err := root.ExecuteContext(ctx)
	os.Exit(cli.ExitCode(err, func(msg string) { fmt.Fprintln(os.Stderr, msg) }))
}
