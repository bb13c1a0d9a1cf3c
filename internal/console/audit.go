package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

type auditFilterForm struct {
	Application, AccessKeyID, Actor, Action, Since, Until string
}

type auditData struct {
	Filter  auditFilterForm
	Actions []string
	Events  []*auditRow
	Next    string // URL of the next (older) page
}

// auditRow is an event with its change summarised for a person.
type auditRow struct {
	*latchkey.AuditEvent
	Changes []string
	Before  string
	After   string
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, u *user) error {
	q := r.URL.Query()
	ff := auditFilterForm{
		Application: strings.TrimSpace(q.Get("application")), AccessKeyID: strings.TrimSpace(q.Get("access_key_id")),
		Actor: strings.TrimSpace(q.Get("actor")), Action: q.Get("action"), Since: q.Get("since"), Until: q.Get("until"),
	}
	f := latchkey.AuditFilter{Account: u.account, Application: ff.Application, AccessKeyID: ff.AccessKeyID,
		Actor: ff.Actor, Action: ff.Action, After: q.Get("page_token"), Limit: 50}
	if ff.Since != "" {
		t, err := time.Parse("2006-01-02", ff.Since)
		if err != nil {
			return latchkey.Errorf(latchkey.EINVALID, "since %q must be a date such as 2026-01-31", ff.Since)
		}
		f.Since = &t
	}
	if ff.Until != "" {
		t, err := time.Parse("2006-01-02", ff.Until)
		if err != nil {
			return latchkey.Errorf(latchkey.EINVALID, "until %q must be a date such as 2026-01-31", ff.Until)
		}
		t = t.Add(24 * time.Hour) // through the end of that day
		f.Until = &t
	}
	evs, next, err := c.Service.ListAuditEvents(r.Context(), u.actor, f)
	if err != nil {
		return err
	}
	d := auditData{Filter: ff, Actions: auditActions, Events: auditRows(evs)}
	if next != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("page_token", next)
		d.Next = Prefix + "/audit?" + nq.Encode()
	}
	c.render(w, r, u, http.StatusOK, "audit", "Audit log", "audit", d)
	return nil
}

func auditRows(evs []*latchkey.AuditEvent) []*auditRow {
	out := make([]*auditRow, 0, len(evs))
	for _, e := range evs {
		out = append(out, &auditRow{AuditEvent: e, Changes: changes(e.Before, e.After), Before: pretty(e.Before), After: pretty(e.After)})
	}
	return out
}

// pretty indents an object's JSON for reading, with <, > and & as
// themselves (the template escapes them), not as \u003c.
func pretty(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if dec.Decode(&v) != nil || enc.Encode(v) != nil {
		return string(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// changes lists the top-level fields that differ between before and after,
// as "field: old → new" for short values.
func changes(before, after json.RawMessage) []string {
	if len(before) == 0 || len(after) == 0 {
		return nil
	}
	var b, a map[string]json.RawMessage
	if json.Unmarshal(before, &b) != nil || json.Unmarshal(after, &a) != nil {
		return nil
	}
	keys := map[string]bool{}
	for k := range b {
		keys[k] = true
	}
	for k := range a {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		if !bytes.Equal(compact(b[k]), compact(a[k])) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var out []string
	for _, k := range names {
		bv, av := short(b[k]), short(a[k])
		if len(bv)+len(av) > 80 {
			out = append(out, k+" changed")
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s → %s", k, bv, av))
	}
	return out
}

func compact(raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return []byte("null")
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

func short(raw json.RawMessage) string {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	s := strings.TrimSpace(pretty(compact(raw)))
	if s == "null" {
		return "none"
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) == nil {
		// Compact keeps the unescaped characters pretty wrote
		return b.String()
	}
	return s
}
