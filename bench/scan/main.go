// Command scan measures the throughput of `latchkey scan` against gitleaks
// (with only the latchkey rule from docs/integrations.md, with and without
// its default decoding) on one tree of generated text files, alternating the
// tools (A B C A B C ...) and reporting medians and ratios as a Markdown table.
//
// Run from the repository root:
//
//	go run ./bench/scan -size 300
//
// It builds ./cmd/latchkey, finds gitleaks on PATH or in GOPATH/bin, writes
// the tree to a temporary directory (removed at the end unless -keep) and
// checks that both tools found every planted secret before timing them.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/keyformat"
)

func main() {
	sizeMB := flag.Int("size", 300, "size of the generated tree in MB")
	runs := flag.Int("runs", 3, "timed runs of each tool")
	keep := flag.Bool("keep", false, "keep the generated tree")
	secrets := flag.Int("secrets", 25, "secrets planted in the tree")
	flag.Parse()
	log.SetFlags(0)

	tmp, err := os.MkdirTemp("", "latchkey-bench-")
	check(err)
	if !*keep {
		defer os.RemoveAll(tmp)
	}
	latchkey := filepath.Join(tmp, "latchkey")
	log.Printf("building ./cmd/latchkey")
	run("go", "build", "-o", latchkey, "./cmd/latchkey")
	gitleaks := findGitleaks()
	conf := filepath.Join(tmp, "gitleaks.toml")
	check(os.WriteFile(conf, gitleaksRule(), 0o644))

	tree := filepath.Join(tmp, "tree")
	log.Printf("generating %d MB in %s", *sizeMB, tree)
	total, files := generate(tree, int64(*sizeMB)*1e6, *secrets)
	log.Printf("%d files, %.1f MB, %d secrets", files, float64(total)/1e6, *secrets)

	report := filepath.Join(tmp, "gitleaks.json")
	tools := []struct {
		name string
		cmd  func() *exec.Cmd
		hits func(out []byte) int
	}{
		{"latchkey scan", func() *exec.Cmd {
			return exec.Command(latchkey, "scan", "--no-git", "--quiet", "--format", "json", tree)
		}, func(out []byte) int {
			var r struct{ Findings []json.RawMessage }
			check(json.Unmarshal(out, &r))
			return len(r.Findings)
		}},
		{"gitleaks dir (latchkey rule only)", func() *exec.Cmd {
			return gitleaksCmd(gitleaks, conf, report, tree)
		}, gitleaksHits(report)},
		// gitleaks also decodes base64, hex and percent-encoded runs by
		// default (--max-decode-depth 5); without that it is a plain
		// regular-expression scan like latchkey's.
		{"gitleaks dir, --max-decode-depth 0", func() *exec.Cmd {
			return gitleaksCmd(gitleaks, conf, report, tree, "--max-decode-depth", "0")
		}, gitleaksHits(report)},
	}
	// One untimed run each warms the page cache and checks the results.
	for _, t := range tools {
		out, _ := t.cmd().Output()
		if n := t.hits(out); n != *secrets {
			log.Fatalf("%s found %d secrets, want %d", t.name, n, *secrets)
		}
	}
	times := make([][]time.Duration, len(tools))
	for i := range *runs {
		for j, t := range tools {
			cmd := t.cmd()
			start := time.Now()
			_ = cmd.Run() // latchkey exits 1: it found the secrets
			d := time.Since(start)
			times[j] = append(times[j], d)
			log.Printf("run %d %-34s %6.2fs %7.1f MB/s", i+1, t.name, d.Seconds(), mbps(total, d))
		}
	}
	fmt.Printf("\nTree: %d files, %.0f MB of generated text, %d secrets; %d CPUs (GOMAXPROCS %d), %s/%s; %d alternating runs each.\n\n",
		files, float64(total)/1e6, *secrets, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, *runs)
	fmt.Println("| tool | median time | throughput | ratio |")
	fmt.Println("| --- | ---: | ---: | --- |")
	a := median(times[0])
	for i, t := range tools {
		m := median(times[i])
		ratio := "1.0x (baseline)"
		if i > 0 {
			ratio = fmt.Sprintf("latchkey is %.1fx faster", m.Seconds()/a.Seconds())
		}
		fmt.Printf("| %s | %.2f s | %.0f MB/s | %s |\n", t.name, m.Seconds(), mbps(total, m), ratio)
	}
}

func gitleaksCmd(gitleaks, conf, report, tree string, extra ...string) *exec.Cmd {
	args := []string{"dir", "--no-banner", "--log-level", "error", "--config", conf,
		"--report-format", "json", "--report-path", report, "--exit-code", "0"}
	return exec.Command(gitleaks, append(append(args, extra...), tree)...)
}

func gitleaksHits(report string) func([]byte) int {
	return func([]byte) int {
		b, err := os.ReadFile(report)
		check(err)
		var r []json.RawMessage
		check(json.Unmarshal(b, &r))
		return len(r)
	}
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

var words = strings.Fields(`func return if else for range var const type struct interface map
string int error nil true false package import config value key token user id name data
request response handler server client http json yaml the a of to and in is it that with as
on be at by this from or an will can not are all ( ) { } [ ] := = == != , ; . " ' // # -> <= >=
0 1 2 42 100 1024 0x1f lksk lksk_ LKIA lookup secret_ref api_key_name url path log info debug warn`)

// generate writes a tree of mixed text files: source-like lines, JSON, logs
// and a few minified one-line files, with n secrets spread through it.
func generate(dir string, size int64, n int) (total int64, files int) {
	r := rand.New(rand.NewPCG(1, 2))
	type file struct {
		path string
		size int
		kind int
	}
	var plan []file
	for total < size {
		var f file
		switch k := r.IntN(100); {
		case k < 2: // minified bundle, one long line
			f = file{fmt.Sprintf("web/dist/%d/app.min.js", len(plan)), 2<<20 + r.IntN(4<<20), 2}
		case k < 20:
			f = file{fmt.Sprintf("logs/%d/server.log", len(plan)), 200<<10 + r.IntN(800<<10), 1}
		default:
			f = file{fmt.Sprintf("src/pkg%d/mod%d/file%d.go", len(plan)%50, len(plan)%7, len(plan)), 2<<10 + r.IntN(120<<10), 0}
		}
		plan = append(plan, f)
		total += int64(f.size)
	}
	at := map[int]bool{}
	for len(at) < n {
		at[r.IntN(len(plan))] = true
	}
	var buf bytes.Buffer
	for i, f := range plan {
		buf.Reset()
		for buf.Len() < f.size {
			switch f.kind {
			case 2:
				buf.WriteString(`var ` + words[r.IntN(len(words))] + `=function(e){return e.` + words[r.IntN(len(words))] + `};`)
			case 1:
				fmt.Fprintf(&buf, "2026-01-02T03:04:05Z level=info msg=%q user=%d path=/v1/%s\n",
					words[r.IntN(len(words))]+" "+words[r.IntN(len(words))], r.IntN(1e6), words[r.IntN(len(words))])
			default:
				for range 4 + r.IntN(10) {
					buf.WriteString(words[r.IntN(len(words))])
					buf.WriteByte(' ')
				}
				buf.WriteByte('\n')
			}
		}
		if at[i] {
			s, err := keyformat.NewSecret()
			check(err)
			id, err := keyformat.NewID()
			check(err)
			pos := r.IntN(buf.Len())
			b := buf.Bytes()
			ins := "\nlatchkey_access_key_id = " + id + "\nlatchkey_secret_access_key = " + s + "\n"
			if f.kind == 2 {
				ins = `;var k="` + s + `";`
			}
			buf = *bytes.NewBuffer(append(b[:pos:pos], append([]byte(ins), b[pos:]...)...))
		}
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		check(os.MkdirAll(filepath.Dir(p), 0o755))
		check(os.WriteFile(p, buf.Bytes(), 0o644))
		files++
	}
	return total, files
}

func gitleaksRule() []byte {
	b, err := os.ReadFile(filepath.Join("docs", "integrations.md"))
	check(err)
	m := regexp.MustCompile("(?s)```toml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		log.Fatal("docs/integrations.md has no ```toml block (run from the repository root)")
	}
	return m[1]
}

func findGitleaks() string {
	if p, err := exec.LookPath("gitleaks"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	check(err)
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "gitleaks")
	if _, err := os.Stat(p); err != nil {
		log.Fatal("gitleaks not found: go install github.com/zricethezav/gitleaks/v8@v8.30.1")
	}
	return p
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
