package console

import (
	"encoding/json"
	"fmt"
	"github.com/latchkey/latchkey/internal/manage"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

type keysData struct {
	Keys []*latchkey.AccessKey
	Next string
	// Canaries are the canary alerts of the last day, for those who may
	// see canaries (the banner).
	Canaries []canaryBanner
}

// canaryBanner is one canary alert as the banner shows it.
type canaryBanner struct {
	At    time.Time
	Alert manage.CanaryAlert
}

// keys is the main key list: every application key of the account, with
// its status beside it.
func (c *Console) keys(w http.ResponseWriter, r *http.Request, u *user) error {
	keys, next, err := c.Service.ListAccessKeys(r.Context(), u.actor, latchkey.AccessKeyFilter{
		Account: u.account, Kind: "application", After: r.URL.Query().Get("page_token"), Limit: 100})
	if err != nil {
		return err
	}
	d := keysData{Keys: keys, Next: next}
	if u.actor.CanSeeCanaries(u.account) {
		since := c.Service.Now().Add(-24 * time.Hour)
		evs, _, err := c.Service.ListAuditEvents(r.Context(), u.actor, latchkey.AuditFilter{
			Account: u.account, Action: latchkey.ActionCanaryTriggered, Since: &since, Limit: 5})
		if err != nil {
			return err
		}
		for _, ev := range evs {
			var a manage.CanaryAlert
			if json.Unmarshal(ev.After, &a) == nil {
				d.Canaries = append(d.Canaries, canaryBanner{At: ev.Time, Alert: a})
			}
		}
	}
	c.render(w, r, u, http.StatusOK, "keys", "Access keys", "keys", d)
	return nil
}

type keyData struct {
	Key        *latchkey.AccessKey
	App        *latchkey.Application
	Chart      *chartModel
	Periods    []periodLink
	Events     []*auditRow
	Enforced   restrictionsForm
	ReportOnly restrictionsForm
	// Quota is the quota card; nil for a canary.
	Quota *quotaData
}

func (c *Console) key(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, err := c.appKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	c.follow(u, k.Account)
	app, err := c.Service.GetApplication(ctx, u.actor, k.Account, k.Application)
	if err != nil {
		return err
	}
	hours, _ := strconv.Atoi(r.URL.Query().Get("hours"))
	chart, err := c.chartOf(ctx, u, k, nil, hours)
	if err != nil {
		return err
	}
	evs, _, err := c.Service.ListAuditEvents(ctx, u.actor, latchkey.AuditFilter{Account: k.Account, AccessKeyID: k.ID, Limit: 10})
	if err != nil {
		return err
	}
	periods := periodLinks(chart.Hours, func(hours int) string {
		if hours == 0 {
			return keyURL(k.ID)
		}
		return keyURL(k.ID) + "?hours=" + strconv.Itoa(hours)
	})
	quota, err := c.quotaOf(r, u, k)
	if err != nil {
		return err
	}
	d := keyData{Key: k, App: app, Chart: chart, Periods: periods, Events: auditRows(evs),
		Enforced: formOf(k.Restrictions), ReportOnly: formOf(k.ReportOnly), Quota: quota}
	c.renderRefreshing(w, r, u, "key", k.ID, "keys", d)
	return nil
}

// renderRefreshing renders a page with a live chart: with scripts off, the
// page reloads itself every 30 seconds instead.
func (c *Console) renderRefreshing(w http.ResponseWriter, r *http.Request, u *user, name, title, section string, data any) {
	v := c.newView(r, u, title, section, data)
	v.Refresh = 30
	q := r.URL.Query()
	q.Set("auto", "1")
	v.RefreshURL = r.URL.Path + "?" + q.Encode()
	c.write(w, http.StatusOK, name, v)
}

type createdData struct {
	Key      *latchkey.AccessKey
	Secret   string
	CredFile string
	DotEnv   string
	Next     string
	NextText string
}

// createKey creates a key and answers with the only page that ever shows
// its secret. The page is not stored by the browser (no-store), and the
// form's one-time token makes a reload or a double click refuse instead of
// creating a second key.
func (c *Console) createKey(w http.ResponseWriter, r *http.Request, u *user) error {
	appName := r.PathValue("name")
	back := appURL(appName)
	rotate := r.PostForm.Get("rotate")
	if rotate != "" {
		if !keyformat.ValidID(rotate) {
			rotate = ""
		} else {
			back = rotateURL(rotate, 1, "")
		}
	}
	if !c.sessions.useNonce(u.id, r.PostForm.Get("once")) {
		return c.back(w, r, u, back, flash{Error: true, Message: "That form had already been used, so no key was created. " +
			"A secret is shown only once: if you did not save it, deactivate that key and create another."})
	}
	in := latchkey.NewAccessKey{Description: strings.TrimSpace(r.PostForm.Get("description")), Canary: rotate == "" && r.PostForm.Get("canary") == "on",
		PublicKey: strings.TrimSpace(r.PostForm.Get("public_key"))}
	if v := strings.TrimSpace(r.PostForm.Get("expires")); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return c.back(w, r, u, back, flash{Error: true, Message: fmt.Sprintf("Expiry %q must be a date such as 2027-01-31.", v)})
		}
		in.ExpiresAt = &t
	}
	ck, err := c.Service.CreateAccessKey(r.Context(), u.actor, u.account, appName, in)
	if err != nil {
		return c.backOnUserError(w, r, u, back, err)
	}
	d := createdData{Key: ck.AccessKey, Secret: ck.Secret, Next: appURL(appName), NextText: "I have saved the secret: back to " + appName}
	if rotate != "" {
		d.Next, d.NextText = rotateURL(rotate, 2, ck.ID), "I have saved the secret: continue to step 2, move your clients"
	}
	if ck.Secret == "" { // a signing key: nothing secret to show
		v := c.newView(r, u, "Signing key created", "applications", d)
		c.write(w, http.StatusCreated, "created", v)
		return nil
	}
	d.CredFile = fmt.Sprintf("[%s]\nlatchkey_access_key_id = %s\nlatchkey_secret_access_key = %s\n", appName, ck.ID, ck.Secret)
	d.DotEnv = fmt.Sprintf("LATCHKEY_ACCESS_KEY_ID=%s\nLATCHKEY_SECRET_ACCESS_KEY=%s\n", ck.ID, ck.Secret)
	v := c.newView(r, u, "Access key created", "applications", d)
	w.Header().Set("Cache-Control", "no-store, max-age=0")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Referrer-Policy", "no-referrer")
	c.write(w, http.StatusCreated, "created", v)
	return nil
}

// returnTo is where a key action goes back to. It is chosen from a fixed
// set, never taken from the form as a URL.
func returnTo(r *http.Request, k *latchkey.AccessKey, after string) string {
	newID := r.PostForm.Get("new")
	if !keyformat.ValidID(newID) {
		newID = ""
	}
	hours, _ := strconv.Atoi(r.PostForm.Get("hours"))
	if _, ok := chartHoursOK(hours); !ok {
		hours = 0
	}
	switch r.PostForm.Get("return") {
	case "rotate":
		switch after {
		case "Inactive":
			return rotateURLHours(k.ID, 4, newID, hours)
		case "Active":
			return rotateURLHours(k.ID, 3, newID, hours)
		case "unconfirmed":
			return rotateURLHours(k.ID, 5, newID, hours)
		case "deleted":
			return appURL(k.Application)
		}
		return rotateURLHours(k.ID, 0, newID, hours)
	case "app":
		return appURL(k.Application)
	case "keys":
		return Prefix + "/keys"
	}
	if after == "deleted" {
		return appURL(k.Application)
	}
	return keyURL(k.ID)
}

func rotateURL(id string, step int, newID string) string {
	return rotateURLHours(id, step, newID, 0)
}

// rotateURLHours is rotateURL keeping the chart period the user chose.
func rotateURLHours(id string, step int, newID string, hours int) string {
	return rotateURLAt(Prefix, id, step, newID, hours)
}

// rotateURLAt is rotateURLHours under base (/console or /portal).
func rotateURLAt(base, id string, step int, newID string, hours int) string {
	q := url.Values{}
	if hours > 0 {
		q.Set("hours", strconv.Itoa(hours))
	}
	if step > 0 {
		q.Set("step", strconv.Itoa(step))
	}
	if newID != "" {
		q.Set("new", newID)
	}
	s := base + "/keys/" + url.PathEscape(id) + "/rotate"
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

func (c *Console) setStatus(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, err := c.appKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	st, err := latchkey.ParseStatus(r.PostForm.Get("status"))
	if err != nil {
		return c.backOnUserError(w, r, u, keyURL(k.ID), err)
	}
	if _, err := c.Service.UpdateAccessKey(ctx, u.actor, k.ID, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
		return c.backOnUserError(w, r, u, returnTo(r, k, ""), err)
	}
	msg := "Access key " + k.ID + " is now Active: calls with it are accepted again."
	if st == latchkey.StatusInactive {
		msg = "Access key " + k.ID + " is now Inactive: calls with it are refused, and each attempt is recorded. Make it Active again if something breaks."
	}
	return c.back(w, r, u, returnTo(r, k, string(st)), flash{Message: msg})
}

func (c *Console) deleteKey(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, err := c.appKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	if strings.TrimSpace(r.PostForm.Get("confirm")) != k.ID {
		to := keyURL(k.ID)
		if r.PostForm.Get("return") == "rotate" {
			to = returnTo(r, k, "unconfirmed")
		}
		return c.back(w, r, u, to, flash{Error: true, Message: "Type the access key ID exactly to delete the key. Nothing was deleted."})
	}
	// never force: the service refuses to delete an Active key
	if err := c.Service.DeleteAccessKey(ctx, u.actor, k.ID, false); err != nil {
		return c.backOnUserError(w, r, u, keyURL(k.ID), err)
	}
	msg := "Access key " + k.ID + " deleted. This cannot be undone; calls with it now fail as an unknown key."
	if r.PostForm.Get("return") == "rotate" {
		msg = "Rotation finished: the old key " + k.ID + " is deleted."
	}
	return c.back(w, r, u, returnTo(r, k, "deleted"), flash{Message: msg})
}

func (c *Console) updateKeyRestrictions(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, err := c.appKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	back := keyURL(k.ID) + "#restrictions"
	var upd latchkey.AccessKeyUpdate
	var msg string
	switch r.PostForm.Get("mode") {
	case "enforce_report_only":
		upd.EnforceReportOnly = true
		msg = "The report-only restrictions of " + k.ID + " are now enforced."
	case "report_only":
		rs, err := parseRestrictions(r.PostForm)
		if err != nil {
			return c.backOnUserError(w, r, u, back, err)
		}
		upd.ReportOnly = rs
		msg = "Report-only restrictions of " + k.ID + " saved: " + restrictionSummary(rs) + ". Calls they would refuse are recorded, not refused."
	default:
		rs, err := parseRestrictions(r.PostForm)
		if err != nil {
			return c.backOnUserError(w, r, u, back, err)
		}
		upd.Restrictions = rs
		msg = "Restrictions of " + k.ID + " saved and enforced: " + restrictionSummary(rs) + "."
	}
	if _, err := c.Service.UpdateAccessKey(ctx, u.actor, k.ID, upd); err != nil {
		return c.backOnUserError(w, r, u, back, err)
	}
	return c.back(w, r, u, back, flash{Message: msg})
}
