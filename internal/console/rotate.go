package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

// The rotation procedure, one step per page of the wizard.
var rotationSteps = []string{
	"Create a second key",
	"Move every client to the new key",
	"Make the old key Inactive",
	"Check that everything still works",
	"Delete the old key",
}

type stepView struct {
	N       int
	Title   string
	Done    bool
	Current bool
	URL     string // "" when the step cannot be reached yet
}

type rotateData struct {
	// Base is where the wizard's links lead: /console, or /portal for a
	// consumer.
	Base      string
	Old, New  *latchkey.AccessKey
	App       *latchkey.Application
	Step      int
	Steps     []stepView
	Chart     *chartModel
	Periods   []periodLink
	MaxKeys   int
	CanCreate bool
	Nonce     string

	// step 3
	OldTraffic  keySummary
	StillInUse  bool
	LastUseAgo  string
	Deactivated *time.Time

	// step 4
	RejectedSince int64
	ByCode        []codeCount
	RecentReject  *latchkey.Rejection
}

// rotate is the rotation wizard for the key in the path (the old key). The
// new key is ?new=, or else the application's newest other key. Which step
// is shown follows the keys' state unless ?step= names one already reached.
func (c *Console) rotate(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	old, err := c.appKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	c.follow(u, old.Account)
	if old.Canary {
		// a canary is planted, not used: nothing moves to a successor
		return c.back(w, r, u, "/console/keys/"+old.ID, flash{Error: true,
			Message: "A canary key is not rotated: it authorizes nothing, so no client moves to a new key. To replace it, create another canary and delete this one."})
	}
	d, err := c.rotateModel(ctx, u, old, r.URL.Query(), func() (string, error) { return c.sessions.newNonce(u.id, c.now()) })
	if err != nil {
		return err
	}
	title := "Rotate " + old.ID
	if d.Step == 5 {
		// no reload while the user types the confirmation
		c.render(w, r, u, http.StatusOK, "rotate", title, "keys", d)
		return nil
	}
	c.renderRefreshing(w, r, u, "rotate", title, "keys", d)
	return nil
}

// rotateModel is the rotation wizard's page for the old key: the steps,
// the step shown, the new key and the traffic chart. It serves the console
// and the portal alike (u.base says where links lead); newNonce issues the
// one-time token of the create form.
func (c *Console) rotateModel(ctx context.Context, u *user, old *latchkey.AccessKey, query url.Values, newNonce func() (string, error)) (*rotateData, error) {
	app, err := c.Service.GetApplication(ctx, u.actor, old.Account, old.Application)
	if err != nil {
		return nil, err
	}
	siblings, _, err := c.Service.ListAccessKeys(ctx, u.actor, latchkey.AccessKeyFilter{Account: old.Account, Application: old.Application, Kind: "application", Limit: 1000})
	if err != nil {
		return nil, err
	}
	// a canary is planted, never a rotation's successor, and does not
	// take one of the application's places
	siblings = slices.DeleteFunc(siblings, func(k *latchkey.AccessKey) bool { return k.Canary && k.ID != old.ID })
	base := u.prefix()
	d := &rotateData{Base: base, Old: old, App: app, MaxKeys: c.Service.MaxKeysPerApplication}
	d.New = pickNew(old, siblings, query.Get("new"))
	newID := ""
	if d.New != nil {
		newID = d.New.ID
	}

	reach := func(n int) bool {
		switch n {
		case 1:
			return true
		case 2, 3:
			return d.New != nil
		}
		return old.Status == latchkey.StatusInactive
	}
	suggested := 1
	switch {
	case old.Status == latchkey.StatusInactive:
		suggested = 4
	case d.New != nil:
		suggested = 2
	}
	d.Step = suggested
	if n, err := strconv.Atoi(query.Get("step")); err == nil && n >= 1 && n <= 5 && reach(n) {
		d.Step = n
	}
	hours, _ := strconv.Atoi(query.Get("hours"))
	if _, ok := chartHoursOK(hours); !ok {
		hours = 0
	}
	for i, title := range rotationSteps {
		n := i + 1
		sv := stepView{N: n, Title: title, Current: n == d.Step}
		switch n {
		case 1:
			sv.Done = d.New != nil
		case 2:
			sv.Done = d.New != nil && d.New.LastUsed != nil && (old.Status == latchkey.StatusInactive || d.Step > 2)
		case 3:
			sv.Done = old.Status == latchkey.StatusInactive
		case 4:
			sv.Done = d.Step == 5
		}
		if reach(n) {
			sv.URL = rotateURLAt(base, old.ID, n, newID, hours)
		}
		d.Steps = append(d.Steps, sv)
	}

	if d.Step == 1 && d.New == nil {
		d.CanCreate = u.canWrite() && len(siblings) < d.MaxKeys
		if d.CanCreate {
			if d.Nonce, err = newNonce(); err != nil {
				return nil, err
			}
		}
	}
	if old.Status == latchkey.StatusInactive {
		if d.Deactivated, err = c.deactivatedAt(ctx, u, old); err != nil {
			return nil, err
		}
	}
	// the chart: both keys once there are two, else the old key alone
	if d.Chart, err = c.chartOf(ctx, u, old, d.New, hours); err != nil {
		return nil, err
	}
	d.Periods = periodLinks(d.Chart.Hours, func(hours int) string { return rotateURLAt(base, old.ID, d.Step, newID, hours) })
	now := c.now()
	for _, s := range d.Chart.Summary {
		if s.Role == "old" || s.Role == "key" {
			d.OldTraffic = s
		}
	}
	if old.LastUsed != nil && now.Sub(old.LastUsed.At) < c.TrafficWindow {
		d.StillInUse = true
		d.LastUseAgo = ago(now, old.LastUsed.At)
	}
	if d.Step >= 4 && d.Deactivated != nil {
		if d.RejectedSince, d.ByCode, err = c.rejectedSince(ctx, u, old.ID, *d.Deactivated, now); err != nil {
			return nil, err
		}
		if lr := old.LastRejected; lr != nil && !lr.At.Before(*d.Deactivated) {
			d.RecentReject = lr
		}
	}
	return d, nil
}

// pickNew chooses the rotation's new key: the one named, if it is another
// key of the same application, else the newest other key.
func pickNew(old *latchkey.AccessKey, siblings []*latchkey.AccessKey, named string) *latchkey.AccessKey {
	var others []*latchkey.AccessKey
	for _, k := range siblings {
		if k.ID == old.ID {
			continue
		}
		if k.ID == named {
			return k
		}
		others = append(others, k)
	}
	if len(others) == 0 {
		return nil
	}
	sort.SliceStable(others, func(i, j int) bool { return others[i].CreatedAt.After(others[j].CreatedAt) })
	return others[0]
}

// deactivatedAt finds when the key was last made Inactive, from the audit
// log; the key's last change if the log does not say.
func (c *Console) deactivatedAt(ctx context.Context, u *user, k *latchkey.AccessKey) (*time.Time, error) {
	evs, _, err := c.Service.ListAuditEvents(ctx, u.actor, latchkey.AuditFilter{
		Account: k.Account, AccessKeyID: k.ID, Action: latchkey.ActionAccessKeyUpdate, Limit: 100})
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		var before, after struct {
			Status latchkey.Status `json:"status"`
		}
		if json.Unmarshal(e.Before, &before) != nil || json.Unmarshal(e.After, &after) != nil {
			continue
		}
		if before.Status == latchkey.StatusActive && after.Status == latchkey.StatusInactive {
			t := e.Time
			return &t, nil
		}
	}
	t := k.UpdatedAt
	return &t, nil
}

// rejectedSince counts the calls refused for key id since t, by code.
func (c *Console) rejectedSince(ctx context.Context, u *user, id string, since, now time.Time) (int64, []codeCount, error) {
	if !since.Before(now) {
		return 0, nil, nil
	}
	step := time.Minute
	for now.Sub(since)/step >= manage.MaxUsagePoints-2 {
		step *= 2
	}
	if step > 24*time.Hour {
		step = 24 * time.Hour
		since = now.Add(-(manage.MaxUsagePoints - 2) * step)
	}
	pts, err := c.Service.UsageSeries(ctx, u.actor, id, since, now, step)
	if err != nil {
		return 0, nil, err
	}
	by := map[latchkey.Code]int64{}
	var total int64
	for _, p := range pts {
		// the deactivation minute itself may hold calls from before it
		// that were valid; only rejections are counted
		for code, n := range p.Rejected {
			by[code] += n
			total += n
		}
	}
	var out []codeCount
	for code, n := range by {
		out = append(out, codeCount{code, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return total, out, nil
}
