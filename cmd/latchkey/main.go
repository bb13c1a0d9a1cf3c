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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := cli.NewRoot()
	root.AddCommand(newServeCmd(), newMigrateCmd())
	err := root.ExecuteContext(ctx)
	os.Exit(cli.ExitCode(err, func(msg string) { fmt.Fprintln(os.Stderr, msg) }))
}
