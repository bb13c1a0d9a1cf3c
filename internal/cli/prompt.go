package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// input reads standard input one line at a time in the background, so a
// command can wait for a line and for something else (a timer, a change on
// the server) at once. It starts reading at the first use only.
type input struct {
	r     io.Reader
	echo  bool // write answers back: input is not a terminal, so it did not
	once  sync.Once
	lines chan string // closed at end of input
}

func newInput(r io.Reader, echo bool) *input {
	return &input{r: r, echo: echo, lines: make(chan string)}
}

// Lines returns the channel of lines, closed at end of input.
func (in *input) Lines() <-chan string {
	in.once.Do(func() {
		go func() {
			defer close(in.lines)
			sc := bufio.NewScanner(in.r)
			for sc.Scan() {
				in.lines <- strings.TrimSpace(sc.Text())
			}
		}()
	})
	return in.lines
}

// ReadLine waits for the next line. ok is false at end of input.
func (in *input) ReadLine(ctx context.Context) (line string, ok bool, err error) {
	select {
	case <-ctx.Done():
		return "", false, ctx.Err()
	case line, ok = <-in.Lines():
		return line, ok, nil
	}
}

// confirm asks a yes/no question on w. An empty answer is def; end of input
// is reported as answered false, so callers can tell "no" from "nobody is
// there".
func (in *input) confirm(ctx context.Context, w io.Writer, question string, def bool) (yes, answered bool, err error) {
	hint := "[y/N]"
	if def {
		hint = "[Y/n]"
	}
	for {
		fmt.Fprintf(w, "%s %s ", question, hint)
		line, ok, err := in.ReadLine(ctx)
		if err != nil {
			fmt.Fprintln(w)
			return false, false, err
		}
		if !ok {
			fmt.Fprintln(w, "(no answer: standard input is closed)")
			return false, false, nil
		}
		if in.echo {
			fmt.Fprintln(w, line)
		}
		switch strings.ToLower(line) {
		case "":
			return def, true, nil
		case "y", "yes":
			return true, true, nil
		case "n", "no":
			return false, true, nil
		}
		fmt.Fprintln(w, "Please answer yes or no.")
	}
}
