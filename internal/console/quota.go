package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

// quotaData is the quota card of a key's page: the budget as the API
// reads it (GET /v1/access-keys/{id}/quota), nil when the key has none.
type quotaData struct {
	View *manage.QuotaView
	// Max is the bar's full length: the period's budget (what it was
	// set, refilled or topped up to), at least what is left.
	Max int64
	// Form is what the set form shows: the quota's configuration, or
	// what the user typed when it was refused.
	Form quotaForm
}

// quotaForm is the set form's fields as text.
type quotaForm struct {
	Remaining, RefillAmount, RefillInterval, LowThreshold string
}

// quotaOf reads key k's quota for its page; nil for a canary (it never
// authorizes anything, so it is never metered) and for a key without one.
func (c *Console) quotaOf(r *http.Request, u *user, k *latchkey.AccessKey) (*quotaData, error) {
	if k.Canary {
		return nil, nil
	}
	d := &quotaData{}
	if k.Quota == nil {
		return d, nil
	}
	v, err := c.Service.GetQuota(r.Context(), u.actor, k.ID)
	if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
		return d, nil // removed meanwhile
	}
	if err != nil {
		return nil, err
	}
	q := v.Quota
	d.View, d.Max = v, max(q.Budget, q.Remaining, 1)
	d.Form.Remaining = strconv.FormatInt(q.Remaining, 10)
	if q.Refill != nil {
		d.Form.RefillAmount, d.Form.RefillInterval = strconv.FormatInt(q.Refill.Amount, 10), q.Refill.Interval
	}
	if q.LowThreshold > 0 {
		d.Form.LowThreshold = strconv.FormatInt(q.LowThreshold, 10)
	}
	return d, nil
}

// quotaNumber parses a whole number from 0 (or 1 with positive) to
// latchkey.MaxQuota typed into the field named label.
func quotaNumber(label, s string, positive bool) (int64, error) {
	lo := int64(0)
	if positive {
		lo = 1
	}
	t := strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(s), ",", ""), "_", "")
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < lo || n > latchkey.MaxQuota {
		return 0, latchkey.Errorf(latchkey.EINVALID, "%s %q must be a whole number from %d to %s.", label, strings.TrimSpace(s), lo, number(latchkey.MaxQuota))
	}
	return n, nil
}

// setQuota answers the quota forms of a key's page: set (a new budget and
// schedule), reset (a new budget, same schedule) and remove. Each is one
// manage.Service.UpdateAccessKey, audited as the API's PATCH is.
func (c *Console) setQuota(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, err := c.appKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	back := keyURL(k.ID) + "#quota"
	var upd latchkey.AccessKeyUpdate
	var msg string
	f := r.PostForm
	switch f.Get("mode") {
	case "remove":
		if k.Quota == nil {
			return c.back(w, r, u, back, flash{Error: true, Message: "Access key " + k.ID + " has no quota: nothing was removed."})
		}
		upd.RemoveQuota = true
		msg = "The quota of " + k.ID + " is removed: its calls are no longer metered."
	case "reset":
		if k.Quota == nil {
			return c.back(w, r, u, back, flash{Error: true, Message: "Access key " + k.ID + " has no quota to reset: set one first."})
		}
		n, err := quotaNumber("Remaining", f.Get("remaining"), false)
		if err != nil {
			return c.backOnUserError(w, r, u, back, err)
		}
		upd.Quota = &latchkey.Quota{Remaining: n, Refill: k.Quota.Refill, LowThreshold: k.Quota.LowThreshold}
		msg = fmt.Sprintf("The quota of %s is reset: %s calls left now.", k.ID, number(n))
	case "set":
		q, err := parseQuotaForm(f)
		if err != nil {
			return c.backOnUserError(w, r, u, back, err)
		}
		upd.Quota = q
		msg = fmt.Sprintf("The quota of %s is set: %s calls left now%s.", k.ID, number(q.Remaining), refillText(q.Refill))
	default:
		return c.back(w, r, u, back, flash{Error: true, Message: "That form did not say what to do with the quota, so nothing was changed. Reload the page and try again."})
	}
	if _, err := c.Service.UpdateAccessKey(ctx, u.actor, k.ID, upd); err != nil {
		return c.backOnUserError(w, r, u, back, err)
	}
	return c.back(w, r, u, back, flash{Message: msg})
}

// parseQuotaForm reads the set form: remaining, and optionally a refill
// (amount and interval together) and a low threshold.
func parseQuotaForm(f url.Values) (*latchkey.Quota, error) {
	n, err := quotaNumber("Remaining", f.Get("remaining"), false)
	if err != nil {
		return nil, err
	}
	q := &latchkey.Quota{Remaining: n}
	amount, interval := strings.TrimSpace(f.Get("refill_amount")), strings.TrimSpace(f.Get("refill_interval"))
	switch {
	case amount != "" && interval != "":
		a, err := quotaNumber("Refill amount", amount, true)
		if err != nil {
			return nil, err
		}
		if _, err := latchkey.ParseInterval(interval); err != nil {
			return nil, latchkey.Errorf(latchkey.EINVALID, "Refill interval %q is not an interval: use a duration such as 24h or every 6h (1m to 8784h), daily, or monthly:D with D from 1 to %d.", interval, latchkey.MaxMonthlyDay)
		}
		q.Refill = &latchkey.Refill{Amount: a, Interval: interval}
	case amount != "" || interval != "":
		return nil, latchkey.Errorf(latchkey.EINVALID, "Give both a refill amount and a refill interval (e.g. 10000 and monthly:1), or neither for a budget that never refills.")
	}
	if s := strings.TrimSpace(f.Get("low_threshold")); s != "" {
		if q.LowThreshold, err = quotaNumber("Low threshold", s, false); err != nil {
			return nil, err
		}
	}
	return q, q.Validate()
}

func refillText(r *latchkey.Refill) string {
	if r == nil {
		return ", no refill"
	}
	return ", refilled to " + number(r.Amount) + " " + intervalText(r.Interval)
}

// intervalText says a refill interval in words: "every 24h", "on the 1st
// of each month".
func intervalText(s string) string {
	iv, err := latchkey.ParseInterval(s)
	switch {
	case err != nil:
		return s
	case iv.MonthDay > 0:
		return "on day " + strconv.Itoa(iv.MonthDay) + " of each month (00:00 UTC)"
	case iv.Every == 24*time.Hour:
		return "every day"
	}
	return "every " + strings.TrimSuffix(strings.TrimSuffix(iv.Every.String(), "0s"), "0m")
}

// topUpQuota adds to what a key's quota has left
// (manage.Service.TopUpQuota, audited as the API's top-up is).
func (c *Console) topUpQuota(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, err := c.appKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	back := keyURL(k.ID) + "#quota"
	n, err := quotaNumber("Top-up amount", r.PostForm.Get("amount"), true)
	if err != nil {
		return c.backOnUserError(w, r, u, back, err)
	}
	q, err := c.Service.TopUpQuota(ctx, u.actor, k.ID, n)
	if err != nil {
		return c.backOnUserError(w, r, u, back, err)
	}
	return c.back(w, r, u, back, flash{Message: fmt.Sprintf("The quota of %s is topped up by %s: %s calls left now.", k.ID, number(n), number(q.Remaining))})
}

// quotaKind says a quota history entry's kind in words.
func quotaKind(kind string) string {
	switch kind {
	case latchkey.QuotaSet:
		return "Set"
	case latchkey.QuotaTopUp:
		return "Top-up"
	case latchkey.QuotaRemoved:
		return "Removed"
	case latchkey.QuotaRefilled:
		return "Refill"
	case latchkey.QuotaExhausted:
		return "Exhausted"
	}
	return kind
}
