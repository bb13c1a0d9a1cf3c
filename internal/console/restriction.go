package console

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey"
)

// restrictionsForm is the restrictions editor's content, as the form shows
// it: one entry per line.
type restrictionsForm struct {
	IPs, Referrers, Scopes, IOS, Android string
	PerSecond, Burst, PerMinute          string
}

func formOf(r *latchkey.Restrictions) restrictionsForm {
	if r == nil {
		return restrictionsForm{}
	}
	f := restrictionsForm{
		IPs: strings.Join(r.AllowedIPs, "\n"), Referrers: strings.Join(r.AllowedReferrers, "\n"),
		Scopes: strings.Join(r.Scopes, "\n"), IOS: strings.Join(r.IOSBundleIDs, "\n"),
	}
	var apps []string
	for _, a := range r.AndroidApps {
		apps = append(apps, a.PackageName+" "+a.SHA1Fingerprint)
	}
	f.Android = strings.Join(apps, "\n")
	if rl := r.RateLimit; rl != nil {
		if rl.PerSecond > 0 {
			f.PerSecond = strconv.FormatFloat(rl.PerSecond, 'f', -1, 64)
			f.Burst = strconv.Itoa(rl.Burst)
		}
		if rl.PerMinute > 0 {
			f.PerMinute = strconv.Itoa(rl.PerMinute)
		}
	}
	return f
}

// entries splits a textarea into entries: one per line (commas also
// separate), blanks dropped.
func entries(s string) []string {
	var out []string
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// parseRestrictions reads the editor's fields. Values are checked by
// Restrictions.Validate (in the service); this only splits them, and names
// the field when a number is not one.
func parseRestrictions(f url.Values) (*latchkey.Restrictions, error) {
	r := &latchkey.Restrictions{
		AllowedIPs:       entries(f.Get("allowed_ips")),
		AllowedReferrers: entries(f.Get("allowed_referrers")),
		Scopes:           entries(f.Get("scopes")),
		IOSBundleIDs:     entries(f.Get("ios_bundle_ids")),
	}
	for _, line := range strings.FieldsFunc(f.Get("android_apps"), func(r rune) bool { return r == '\n' || r == '\r' }) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, latchkey.Errorf(latchkey.EINVALID, "android_apps: %q must be a package name and a SHA-1 fingerprint separated by a space (e.g. com.example.app 12:34:...:EF)", strings.TrimSpace(line))
		}
		r.AndroidApps = append(r.AndroidApps, latchkey.AndroidApp{PackageName: fields[0], SHA1Fingerprint: fields[1]})
	}
	ps, burst, pm := strings.TrimSpace(f.Get("per_second")), strings.TrimSpace(f.Get("burst")), strings.TrimSpace(f.Get("per_minute"))
	if ps != "" || burst != "" || pm != "" {
		rl := &latchkey.RateLimit{}
		var err error
		if ps != "" {
			if rl.PerSecond, err = strconv.ParseFloat(ps, 64); err != nil {
				return nil, latchkey.Errorf(latchkey.EINVALID, "rate limit: requests per second must be a number, not %q", ps)
			}
		}
		if burst != "" {
			if rl.Burst, err = strconv.Atoi(burst); err != nil {
				return nil, latchkey.Errorf(latchkey.EINVALID, "rate limit: burst must be a whole number, not %q", burst)
			}
		}
		if pm != "" {
			if rl.PerMinute, err = strconv.Atoi(pm); err != nil {
				return nil, latchkey.Errorf(latchkey.EINVALID, "rate limit: requests per minute must be a whole number, not %q", pm)
			}
		}
		r.RateLimit = rl
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}
