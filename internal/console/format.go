package console

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// pageNames are the page templates; each is parsed with layout.html and
// the shared partials.
var pageNames = []string{
	"signin", "continue", "error", "applications", "application", "keys", "key", "created", "rotate", "audit",
}

var funcs = template.FuncMap{
	"ago":       ago,
	"utc":       utc,
	"rfc3339":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"expiry":    expiry,
	"expires":   expires,
	"code":      codeHTML,
	"ua":        shortUA,
	"lines":     func(ss []string) string { return strings.Join(ss, "\n") },
	"restr":     restrictionSummary,
	"add":       func(a, b int) int { return a + b },
	"inactive":  func(s latchkey.Status) bool { return s == latchkey.StatusInactive },
	"number":    number,
	"quotaKind": quotaKind,
	"interval":  intervalText,
	"dict":      dict,
	"action":    actionLabel,
	"sub":       func(a, b int) int { return a - b },
	"subf":      func(a, b float64) float64 { return a - b },
	"f1":        func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"plotRight": func() int { return chartLeft + plotW },
	"plotLeft":  func() int { return chartLeft },
}

func parsePages() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/chart.html"))
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t := template.Must(base.Clone())
		pages[name] = template.Must(t.ParseFS(templateFS, "templates/"+name+".html"))
	}
	pages["chart"] = base
	return pages
}

// ago says how long before (or after) now t is, in words a person scans.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d/time.Hour))
	case d < 60*24*time.Hour:
		s = fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d < 2*365*24*time.Hour:
		s = fmt.Sprintf("%d months", int(d/(30*24*time.Hour)))
	default:
		s = fmt.Sprintf("%d years", int(d/(365*24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func expiry(now time.Time, t *time.Time) string {
	if t == nil {
		return "never"
	}
	if !t.After(now) {
		return "expired " + ago(now, *t)
	}
	return ago(now, *t)
}

// expires says when a key that has an expiry stops working, or stopped.
func expires(now time.Time, t *time.Time) string {
	if t.After(now) {
		return "expires " + ago(now, *t)
	}
	return "expired " + ago(now, *t)
}

// codeHTML shows a reason code such as IP_NOT_ALLOWED in a narrow place:
// it may break after an underscore, and nowhere else.
func codeHTML(c latchkey.Code) template.HTML {
	parts := strings.Split(string(c), "_")
	for i, p := range parts {
		parts[i] = template.HTMLEscapeString(p)
	}
	return template.HTML(`<span class="code">` + strings.Join(parts, "_<wbr>") + `</span>`)
}

// shortUA keeps user agents readable in a table cell.
func shortUA(s string) string {
	if s == "" {
		return "no user agent"
	}
	const n = 60
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

func restrictionSummary(r *latchkey.Restrictions) string {
	if r.Empty() {
		return "none"
	}
	s := r.String()
	if r.RateLimit != nil {
		rl := r.RateLimit
		var parts []string
		if rl.PerSecond > 0 {
			parts = append(parts, fmt.Sprintf("%g/s", rl.PerSecond))
		}
		if rl.PerMinute > 0 {
			parts = append(parts, fmt.Sprintf("%d/min", rl.PerMinute))
		}
		s = strings.Replace(s, "rate limit", "rate limit "+strings.Join(parts, ", "), 1)
	}
	return s
}

func number(n int64) string {
	s := fmt.Sprint(n)
	if n < 10000 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// dict builds a map for passing several values to a partial template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

var actionLabels = map[string]string{
	latchkey.ActionAccountCreate:     "account created",
	latchkey.ActionAccountUpdate:     "account changed",
	latchkey.ActionApplicationCreate: "application created",
	latchkey.ActionApplicationDelete: "application deleted",
	latchkey.ActionApplicationUpdate: "application changed",
	latchkey.ActionAccessKeyCreate:   "key created",
	latchkey.ActionAccessKeyUpdate:   "key changed",
	latchkey.ActionAccessKeyDelete:   "key deleted",
	latchkey.ActionAccessKeyExposed:  "key flagged exposed",
	latchkey.ActionPrincipalCreate:   "principal created",
	latchkey.ActionPrincipalDelete:   "principal deleted",
	latchkey.ActionAccessKeyImport:   "keys imported",
}

// auditActions are offered in the audit log's filter, in this order.
var auditActions = []string{
	latchkey.ActionAccessKeyCreate, latchkey.ActionAccessKeyUpdate, latchkey.ActionAccessKeyDelete,
	latchkey.ActionAccessKeyExposed, latchkey.ActionApplicationCreate, latchkey.ActionApplicationUpdate,
	latchkey.ActionApplicationDelete, latchkey.ActionPrincipalCreate, latchkey.ActionPrincipalDelete,
	latchkey.ActionAccountCreate, latchkey.ActionAccountUpdate, latchkey.ActionAccessKeyImport,
}

func actionLabel(a string) string {
	if l, ok := actionLabels[a]; ok {
		return l
	}
	return a
}
