// Command gocanon answers, for the TypeScript SDK's tests, what latchkey's
// Go code makes of a path, a method, a query or a header name: one JSON
// request a line on stdin, one JSON answer a line on stdout. The tests
// (test/canonical.test.mjs) hold the SDK's port of request.go to it.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/latchkey/latchkey"
)

// request is one question. Raw is hex, so that any byte string travels.
type request struct {
	Kind  string `json:"kind"` // path, method, query or header
	Raw   string `json:"raw"`
	Relax uint8  `json:"relax"`
}

type answer struct {
	OK        bool   `json:"ok"`
	Err       string `json:"err,omitempty"`
	Path      string `json:"path,omitempty"`
	Escaped   string `json:"escaped,omitempty"`
	Decoded   string `json:"decoded,omitempty"`
	Segmented string `json:"segmented,omitempty"`
	Method    string `json:"method,omitempty"`
	Identity  bool   `json:"identity,omitempty"`
	Override  bool   `json:"override,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			fmt.Fprintln(os.Stderr, "gocanon:", err)
			os.Exit(2)
		}
		b, err := hex.DecodeString(r.Raw)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gocanon: raw is not hex:", err)
			os.Exit(2)
		}
		_ = enc.Encode(ask(r.Kind, string(b), latchkey.PathRelax(r.Relax)))
	}
	if err := out.Flush(); err != nil {
		os.Exit(1)
	}
}

func ask(kind, s string, relax latchkey.PathRelax) answer {
	switch kind {
	case "path":
		cp, err := latchkey.CanonicalizePath(s, relax)
		if err != nil {
			return answer{Err: latchkey.ErrorMessage(err)}
		}
		return answer{OK: true, Path: cp.Path, Escaped: cp.Escaped, Decoded: cp.Decoded, Segmented: cp.Segmented}
	case "method":
		m, ok := latchkey.CanonicalMethod(s)
		return answer{OK: ok, Method: m}
	case "query":
		return answer{OK: true, Override: latchkey.QueryOverridesMethod(s)}
	case "header":
		return answer{OK: true, Identity: latchkey.IsIdentityHeader(s), Override: latchkey.IsMethodOverrideHeader(s)}
	}
	return answer{Err: "unknown kind " + kind}
}
