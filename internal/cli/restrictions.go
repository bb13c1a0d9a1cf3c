package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// restrictionFlags are the flags that set restrictions, shared by the
// commands that create and update keys and applications. Each flag given
// replaces that one kind of restriction; the others are kept.
type restrictionFlags struct {
	ips, referrers, androidApps, iosBundles, scopes []string
	rateLimit                                       string
	clear                                           bool
}

func (rf *restrictionFlags) register(f *pflag.FlagSet, update bool) {
	f.StringSliceVar(&rf.ips, "allowed-ips", nil, "IP addresses and CIDR ranges the key may be used from (comma-separated or repeated; \"\" for any)")
	f.StringSliceVar(&rf.referrers, "allowed-referrers", nil, "referrer patterns such as https://*.example.com/* (\"\" for any)")
	f.StringArrayVar(&rf.androidApps, "android-app", nil, "Android app as PACKAGE=SHA1_FINGERPRINT (repeatable; \"\" for any)")
	f.StringSliceVar(&rf.iosBundles, "ios-bundle-ids", nil, "iOS bundle identifiers (\"\" for any)")
	f.StringSliceVar(&rf.scopes, "scopes", nil, "scopes such as shipments:read or shipments:* (\"\" for any)")
	f.StringVar(&rf.rateLimit, "rate-limit", "", "requests per key: N/s, N/s:BURST, N/m, or both comma-separated, e.g. 10/s:20,300/m (\"none\" to remove)")
	if update {
		f.BoolVar(&rf.clear, "clear-restrictions", false, "remove every restriction of this set")
	}
}

var restrictionFlagNames = []string{"allowed-ips", "allowed-referrers", "android-app", "ios-bundle-ids", "scopes", "rate-limit"}

// changed reports whether any restriction flag was given.
func (rf *restrictionFlags) changed(cmd *cobra.Command) bool {
	if rf.clear {
		return true
	}
	for _, n := range restrictionFlagNames {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

// apply returns base with the kinds given on the command line replaced.
// base is not modified. Values are checked here, so a mistake names its
// flag before anything reaches the server.
func (rf *restrictionFlags) apply(cmd *cobra.Command, base *latchkey.Restrictions) (*latchkey.Restrictions, error) {
	out := &latchkey.Restrictions{}
	if base != nil && !rf.clear {
		c := *base
		out = &c
	}
	list := func(name string, vals []string) ([]string, bool) {
		if !cmd.Flags().Changed(name) {
			return nil, false
		}
		var kept []string
		for _, v := range vals {
			if v = strings.TrimSpace(v); v != "" {
				kept = append(kept, v)
			}
		}
		return kept, true
	}
	if v, ok := list("allowed-ips", rf.ips); ok {
		out.AllowedIPs = v
	}
	if v, ok := list("allowed-referrers", rf.referrers); ok {
		out.AllowedReferrers = v
	}
	if v, ok := list("ios-bundle-ids", rf.iosBundles); ok {
		out.IOSBundleIDs = v
	}
	if v, ok := list("scopes", rf.scopes); ok {
		out.Scopes = v
	}
	if v, ok := list("android-app", rf.androidApps); ok {
		out.AndroidApps = nil
		for _, a := range v {
			pkg, fp, found := strings.Cut(a, "=")
			if !found {
				return nil, UsageErrorf("--android-app %q: expected PACKAGE=SHA1_FINGERPRINT, e.g. com.example.app=AB:CD:...", a)
			}
			out.AndroidApps = append(out.AndroidApps, latchkey.AndroidApp{PackageName: pkg, SHA1Fingerprint: fp})
		}
	}
	if cmd.Flags().Changed("rate-limit") {
		rl, err := parseRateLimit(rf.rateLimit)
		if err != nil {
			return nil, err
		}
		out.RateLimit = rl
	}
	check := *out
	if err := check.Validate(); err != nil {
		return nil, UsageErrorf("%s", flagMessage(latchkey.ErrorMessage(err)))
	}
	return out, nil
}

// flagMessage rewrites a field name in a validation message into its flag.
func flagMessage(msg string) string {
	r := strings.NewReplacer("allowed_ips:", "--allowed-ips:", "allowed_referrers:", "--allowed-referrers:",
		"android_apps:", "--android-app:", "ios_bundle_ids:", "--ios-bundle-ids:", "scopes:", "--scopes:",
		"rate_limit", "--rate-limit")
	return r.Replace(msg)
}

// parseRateLimit reads N/s, N/s:BURST, N/m, comma-separated, or "none".
func parseRateLimit(s string) (*latchkey.RateLimit, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	bad := func() (*latchkey.RateLimit, error) {
		return nil, UsageErrorf("--rate-limit %q: expected N/s, N/s:BURST, N/m or both, e.g. 10/s:20,300/m", s)
	}
	rl := &latchkey.RateLimit{}
	for _, part := range strings.Split(s, ",") {
		n, unit, ok := strings.Cut(strings.TrimSpace(part), "/")
		if !ok {
			return bad()
		}
		unit, burst, hasBurst := strings.Cut(unit, ":")
		switch unit {
		case "s":
			v, err := strconv.ParseFloat(n, 64)
			// !(v > 0) refuses NaN too; Inf cannot be sent as JSON
			if err != nil || !(v > 0) || math.IsInf(v, 0) {
				return bad()
			}
			rl.PerSecond = v
			if hasBurst {
				b, err := strconv.Atoi(burst)
				if err != nil || b < 1 {
					return bad()
				}
				rl.Burst = b
			}
		case "m":
			v, err := strconv.Atoi(n)
			if err != nil || v <= 0 || hasBurst {
				return bad()
			}
			rl.PerMinute = v
		default:
			return bad()
		}
	}
	return rl, nil
}

// restrictionSummary is a short line for people.
func restrictionSummary(r *latchkey.Restrictions) string {
	if r.Empty() {
		return "none"
	}
	var parts []string
	if len(r.AllowedIPs) > 0 {
		parts = append(parts, "ips "+strings.Join(r.AllowedIPs, " "))
	}
	if len(r.AllowedReferrers) > 0 {
		parts = append(parts, "referrers "+strings.Join(r.AllowedReferrers, " "))
	}
	for _, a := range r.AndroidApps {
		parts = append(parts, "android "+a.PackageName)
	}
	if len(r.IOSBundleIDs) > 0 {
		parts = append(parts, "ios "+strings.Join(r.IOSBundleIDs, " "))
	}
	if len(r.Scopes) > 0 {
		parts = append(parts, "scopes "+strings.Join(r.Scopes, " "))
	}
	if rl := r.RateLimit; rl != nil {
		var l []string
		if rl.PerSecond > 0 {
			l = append(l, fmt.Sprintf("%g/s:%d", rl.PerSecond, rl.Burst))
		}
		if rl.PerMinute > 0 {
			l = append(l, fmt.Sprintf("%d/m", rl.PerMinute))
		}
		parts = append(parts, "rate "+strings.Join(l, ","))
	}
	return strings.Join(parts, "; ")
}
