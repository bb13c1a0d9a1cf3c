// Command setup starts a real `latchkey serve` for the SDK conformance
// suites of every language, creates the keys the cases name, starts the
// "slow" latchkey endpoint, and writes the fixture (see
// sdk/conformance/README.md) to the file -out names. It then stays up until
// it is sent SIGINT or SIGTERM, when it stops the server and removes the
// fixture (which holds secrets) and its temporary directory.
//
//	go run ./sdk/conformance/setup -out /tmp/fixture.json &
//	until [ -s /tmp/fixture.json ]; do sleep 0.2; done
//	LATCHKEY_CONFORMANCE_FIXTURE=/tmp/fixture.json python3 -m unittest ...
//	kill %1
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/latchkey/latchkey/sdk/conformance"
)

func main() {
	out := flag.String("out", "", "where to write the fixture JSON (required; mode 0600, removed on exit)")
	bin := flag.String("latchkey", "", "a latchkey binary to run; empty: go build ./cmd/latchkey into a temporary directory")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: setup -out FIXTURE.json [-latchkey BINARY]: -out is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *out, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "conformance setup:", err)
		os.Exit(1)
	}
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

func run(ctx context.Context, out, bin string) error {
	dir, err := os.MkdirTemp("", "latchkey-conformance-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "latchkey")
		b := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/latchkey/latchkey/cmd/latchkey")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("building latchkey: %w", err)
		}
	}
	creds := filepath.Join(dir, "credentials")
	// The guard is off: every runner sends its refused calls from the
	// same few addresses, and it would answer THROTTLED after 50.
	srv := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--database-url", "sqlite:"+filepath.Join(dir, "latchkey.db"),
		"--credentials-file", creds, "--guard-failures", "0", "--log-level", "warn")
	srv.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME=", "LATCHKEY_SHARED_CREDENTIALS_FILE=")
	srv.Stderr = os.Stderr
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("starting latchkey serve: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
		}
	}()

	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				url <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var endpoint string
	select {
	case endpoint = <-url:
	case err := <-exited:
		return fmt.Errorf("latchkey serve exited before listening: %v", err)
	case <-time.After(60 * time.Second):
		return errors.New("latchkey serve did not print its address within 60s")
	case <-ctx.Done():
		return nil
	}

	f, err := credfile.Read(creds)
	if err != nil {
		return fmt.Errorf("reading the first operator's key: %w", err)
	}
	p := f.Profile("default")
	admin := client.Credentials{AccessKeyID: p[credfile.KeyAccessKeyID], SecretAccessKey: p[credfile.KeySecretAccessKey]}
	fx, err := conformance.Prepare(ctx, endpoint, admin)
	if err != nil {
		return err
	}
	e, err := conformance.StartEndpoints()
	if err != nil {
		return err
	}
	defer e.Close()
	fx.Fill(e)
	sg, err := conformance.StartSigner(fx)
	if err != nil {
		return err
	}
	defer sg.Close()
	if err := fx.Write(out); err != nil {
		return err
	}
	defer os.Remove(out)
	fmt.Printf("conformance fixture written to %s (latchkey at %s); stop with SIGTERM or SIGINT\n", out, endpoint)

	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		return fmt.Errorf("latchkey serve exited: %v", err)
	}
}
