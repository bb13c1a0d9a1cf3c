package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey"
	"github.com/spf13/cobra"
)

// Output formats.
const (
	formatJSON  = "json"
	formatTable = "table"
	formatText  = "text"
)

// outputFormats are the values of --output.
var outputFormats = []string{formatJSON, formatTable, formatText}

// printer writes a command's result in the chosen format.
type printer struct {
	format string
	out    io.Writer // the result
	info   io.Writer // human messages: stderr for JSON, stdout otherwise
	err    io.Writer
	color  bool
	now    time.Time
}

// printer returns the printer for cmd, or a usage error for a bad --output.
func (s *state) printer(cmd *cobra.Command) (*printer, error) {
	format := s.output
	if format == "" {
		format = s.env.Getenv(EnvOutput)
	}
	tty := s.env.IsTerminal(cmd.OutOrStdout())
	switch format {
	case "":
		format = formatText
		if tty {
			format = formatTable
		}
	default:
		if _, err := choice("output", format, outputFormats); err != nil {
			return nil, err
		}
	}
	p := &printer{
		format: format, out: cmd.OutOrStdout(), info: cmd.OutOrStdout(), err: cmd.ErrOrStderr(),
		color: format == formatTable && tty && !s.noColor && s.env.Getenv(EnvNoColor) == "",
		now:   s.env.Now(),
	}
	if format == formatJSON {
		p.info = cmd.ErrOrStderr()
	}
	return p, nil
}

// JSON writes v indented, without HTML escaping.
func (p *printer) JSON(v any) error {
	enc := json.NewEncoder(p.out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Infof writes a human message: to stdout for table and text, to stderr for
// JSON.
func (p *printer) Infof(format string, args ...any) {
	fmt.Fprintf(p.info, format, args...)
}

// cell is one value of a row: Text for --output text (raw: RFC 3339 times,
// "-" for nothing), Show for the table (defaults to Text), and a color.
type cell struct {
	Text  string
	Show  string
	Color string
}

func c(s string) cell { return cell{Text: s} }

// view is a command's result: the JSON document, and the rows of the table
// and of the text output.
type view struct {
	JSON    any
	Headers []string
	Rows    [][]cell
	Empty   string // table message when there are no rows
	// Vertical shows the one row of a table as "HEADER  value" lines,
	// for a single object with long values.
	Vertical bool
}

// Print writes v in the printer's format.
func (p *printer) Print(v view) error {
	switch p.format {
	case formatJSON:
		return p.JSON(v.JSON)
	case formatText:
		for _, r := range v.Rows {
			vals := make([]string, len(r))
			for i, c := range r {
				vals[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c.Text)
			}
			fmt.Fprintln(p.out, strings.Join(vals, "\t"))
		}
		return nil
	}
	if len(v.Rows) == 0 && v.Empty != "" {
		fmt.Fprintln(p.out, v.Empty)
		return nil
	}
	if v.Vertical && len(v.Rows) == 1 {
		rows := make([][]cell, len(v.Headers))
		for i, h := range v.Headers {
			rows[i] = []cell{{Text: h, Color: colorBold}, v.Rows[0][i]}
		}
		p.rows(rows)
		return nil
	}
	p.table(v.Headers, v.Rows)
	return nil
}

// table writes aligned columns under a bold header.
func (p *printer) table(headers []string, rows [][]cell) {
	hs := make([]cell, len(headers))
	for i, h := range headers {
		hs[i] = cell{Text: h, Color: colorBold}
	}
	p.rows(append([][]cell{hs}, rows...))
}

// rows writes aligned rows. Widths are counted in runes of the visible
// text, so colored cells line up.
func (p *printer) rows(rows [][]cell) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			for len(width) <= i {
				width = append(width, 0)
			}
			if n := utf8.RuneCountInString(c.show()); n > width[i] {
				width[i] = n
			}
		}
	}
	p.rowsWidth(rows, width)
}

func (c cell) show() string {
	if c.Show != "" {
		return c.Show
	}
	return c.Text
}

func (p *printer) rowsWidth(rows [][]cell, width []int) {
	show := cell.show
	line := func(cells []cell) {
		var b strings.Builder
		for i, c := range cells {
			s := show(c)
			if p.color && c.Color != "" {
				b.WriteString(c.Color + s + colorReset)
			} else {
				b.WriteString(s)
			}
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(s)+2))
			}
		}
		fmt.Fprintln(p.out, strings.TrimRight(b.String(), " "))
	}
	for _, r := range rows {
		line(r)
	}
}

const (
	colorReset  = "\x1b[0m"
	colorBold   = "\x1b[1m"
	colorRed    = "\x1b[31m"
	colorGreen  = "\x1b[32m"
	colorYellow = "\x1b[33m"
)

// statusCell colors a key's status: green Active, yellow Inactive, red when
// the key was seen somewhere it should not be.
func statusCell(k *latchkey.AccessKey) cell {
	c := cell{Text: string(k.Status), Color: colorGreen}
	if k.Status == latchkey.StatusInactive {
		c.Color = colorYellow
	}
	if k.Exposed != nil {
		c.Show, c.Color = string(k.Status)+" (EXPOSED)", colorRed
	}
	return c
}

// timeCell shows t as RFC 3339 in text and "3m ago" in the table.
func (p *printer) timeCell(t *time.Time) cell {
	if t == nil || t.IsZero() {
		return cell{Text: "-", Show: "never"}
	}
	return cell{Text: t.UTC().Format(time.RFC3339), Show: ago(p.now, *t)}
}

// ageCell shows how long ago t was, without "ago": the age of a key.
func (p *printer) ageCell(t time.Time) cell {
	return cell{Text: t.UTC().Format(time.RFC3339), Show: short(p.now.Sub(t))}
}

// ago says how long before now t was: "just now", "42s ago", "3d ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < time.Second {
		return "just now"
	}
	return short(d) + " ago"
}

// short rounds d to its largest unit: 42s, 5m, 3h, 12d.
func short(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// duration writes d without zero units: 1h, 15m, 1h30m, 90s.
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// plural is "1 use", "2 uses".
func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// useText describes a use or rejection for people: "3m ago from 192.0.2.7
// (curl/8.5.0)".
func useText(now time.Time, at time.Time, ip, ua string) string {
	s := ago(now, at)
	if ip != "" {
		s += " from " + ip
	}
	if ua != "" {
		s += " (" + ua + ")"
	}
	return s
}

func lastUsedText(now time.Time, u *latchkey.Use) string {
	if u == nil {
		return "never"
	}
	return useText(now, u.At, u.IP, u.UserAgent)
}

// usedPhrase is "was last used 3s ago from ..." or "has never been used".
func usedPhrase(now time.Time, u *latchkey.Use) string {
	if u == nil {
		return "has never been used"
	}
	return "was last used " + lastUsedText(now, u)
}

func lastRejectedText(now time.Time, r *latchkey.Rejection) string {
	if r == nil {
		return "never"
	}
	return useText(now, r.At, r.IP, r.UserAgent) + ": " + string(r.Reason)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// owner names what a key belongs to, for tables.
func owner(k *latchkey.AccessKey) string {
	if k.Principal != "" {
		return "principal:" + k.Principal
	}
	return k.Application
}

func itoa(n int) string  { return strconv.Itoa(n) }
func i64(n int64) string { return strconv.FormatInt(n, 10) }

const timeRFC3339 = time.RFC3339

func errMessage(err error) string { return latchkey.ErrorMessage(err) }

func cleanPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}
