package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateQuotaCmd() *cobra.Command {
	var (
		id, identityID    string
		remaining, topUp  int64
		refillAmount, low int64
		refillInterval    string
		remove            bool
	)
	cmd := &cobra.Command{
		Use:   "update-quota (--access-key-id ID | --identity-id ID) (--remaining N [--refill-amount N --refill-interval I] [--low-threshold N] | --top-up N | --remove)",
		Short: "Set, top up or remove an access key's or an identity's quota (a budget of calls)",
		Long: `Set an access key's quota: --remaining is what it may spend now, and with
--refill-amount and --refill-interval the budget is set back to the amount at
each boundary (24h, "every 6h", daily, or monthly:D for the D-th of each month
at 00:00 UTC). --low-threshold sends the quota.low webhook once a period when
the quota falls to it. --top-up adds to what is left; --remove removes the
quota. Every change is audited (access_key.quota_update).

With --identity-id the quota is an identity's, shared by every key of every
application of the identity (audited as identity.quota_update).

EXAMPLES
  latchkey update-quota --access-key-id LKIAEXAMPLEEXAMPLE23 --remaining 10000 --refill-amount 10000 --refill-interval monthly:1 --low-threshold 1000
  latchkey update-quota --access-key-id LKIAEXAMPLEEXAMPLE23 --top-up 500
  latchkey update-quota --access-key-id LKIAEXAMPLEEXAMPLE23 --remove
  latchkey update-quota --identity-id idn_abcdefghijklmnop --remaining 100000 --refill-amount 100000 --refill-interval monthly:1`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			f := cmd.Flags()
			if err := oneOwner(id, identityID); err != nil {
				return err
			}
			set := f.Changed("remaining")
			n := 0
			for _, b := range []bool{set, f.Changed("top-up"), remove} {
				if b {
					n++
				}
			}
			if n != 1 {
				return UsageErrorf("give one of --remaining, --top-up or --remove")
			}
			if !set && (f.Changed("refill-amount") || f.Changed("refill-interval") || f.Changed("low-threshold")) {
				return UsageErrorf("--refill-amount, --refill-interval and --low-threshold go with --remaining")
			}
			if f.Changed("refill-amount") != f.Changed("refill-interval") {
				return UsageErrorf("--refill-amount and --refill-interval go together, e.g. --refill-amount 1000 --refill-interval monthly:1")
			}
			var q *latchkey.Quota
			switch {
			case identityID != "" && f.Changed("top-up"):
				var err error
				if q, err = cl.TopUpIdentityQuota(cmd.Context(), s.account, identityID, topUp); err != nil {
					return err
				}
			case identityID != "":
				u := latchkey.IdentityUpdate{RemoveQuota: remove}
				if set {
					u.Quota = &latchkey.Quota{Remaining: remaining, LowThreshold: low}
					if f.Changed("refill-amount") {
						u.Quota.Refill = &latchkey.Refill{Amount: refillAmount, Interval: refillInterval}
					}
				}
				ident, err := cl.UpdateIdentity(cmd.Context(), s.account, identityID, u)
				if err != nil {
					return err
				}
				return p.Print(identityQuotaView(identityID, ident.Quota))
			case f.Changed("top-up"):
				var err error
				if q, err = cl.TopUpQuota(cmd.Context(), id, topUp); err != nil {
					return err
				}
			default:
				u := latchkey.AccessKeyUpdate{RemoveQuota: remove}
				if set {
					u.Quota = &latchkey.Quota{Remaining: remaining, LowThreshold: low}
					if f.Changed("refill-amount") {
						u.Quota.Refill = &latchkey.Refill{Amount: refillAmount, Interval: refillInterval}
					}
				}
				k, err := cl.UpdateAccessKey(cmd.Context(), id, u)
				if err != nil {
					return err
				}
				q = k.Quota
			}
			if identityID != "" {
				return p.Print(identityQuotaView(identityID, q))
			}
			return p.Print(quotaView(id, q))
		}),
	}
	cmd.Flags().StringVar(&id, "access-key-id", "", "key whose quota to change")
	cmd.Flags().StringVar(&identityID, "identity-id", "", "identity whose shared quota to change")
	cmd.Flags().Int64Var(&remaining, "remaining", 0, "what the quota may spend now")
	cmd.Flags().Int64Var(&refillAmount, "refill-amount", 0, "budget at each refill")
	cmd.Flags().StringVar(&refillInterval, "refill-interval", "", `refill interval: a duration ("24h", "every 6h"), daily, or monthly:D`)
	cmd.Flags().Int64Var(&low, "low-threshold", 0, "send quota.low when what is left falls to this")
	cmd.Flags().Int64Var(&topUp, "top-up", 0, "add this to what is left")
	cmd.Flags().BoolVar(&remove, "remove", false, "remove the quota")
	return cmd
}

// oneOwner checks that exactly one of --access-key-id and --identity-id is
// given.
func oneOwner(keyID, identityID string) error {
	if (keyID == "") == (identityID == "") {
		return UsageErrorf("give --access-key-id LKIAEXAMPLEEXAMPLE23 or --identity-id idn_abcdefghijklmnop (one of them)")
	}
	return nil
}

// identityQuotaView is quotaView for an identity's quota.
func identityQuotaView(id string, q *latchkey.Quota) view {
	v := quotaView(id, q)
	v.Headers[0] = "IDENTITY ID"
	v.JSON = map[string]any{"identity_id": id, "quota": q}
	return v
}

func quotaView(id string, q *latchkey.Quota) view {
	if q == nil {
		return view{JSON: map[string]any{"access_key_id": id, "quota": nil},
			Headers: []string{"ACCESS KEY ID", "REMAINING"}, Rows: [][]cell{{c(id), c("-")}}}
	}
	refill, next := "-", "-"
	if q.Refill != nil {
		refill = i64(q.Refill.Amount) + " " + q.Refill.Interval
	}
	if q.NextRefillAt != nil {
		next = q.NextRefillAt.UTC().Format(timeRFC3339)
	}
	return view{JSON: map[string]any{"access_key_id": id, "quota": q},
		Headers: []string{"ACCESS KEY ID", "REMAINING", "LEASED", "REFILL", "NEXT REFILL"},
		Rows:    [][]cell{{c(id), c(i64(q.Remaining)), c(i64(q.Leased)), c(refill), c(next)}}}
}

func (s *state) newGetQuotaCmd() *cobra.Command {
	var id, identityID string
	cmd := &cobra.Command{
		Use:   "get-quota (--access-key-id ID | --identity-id ID)",
		Short: "Show an access key's or an identity's quota: what is left, when it refills, and its history",
		Long: `Show what an access key's quota (or, with --identity-id, an identity's shared
quota) has left, when it refills next, and its latest changes (set, top_up,
refill, exhausted, removed), newest first.

REMAINING is what can still be granted as the server that answers knows
it; LEASED is the part of it that replicas hold leased from the ledger and
have not spent. With one replica, or with --rate-limit-store (Redis), both
are exact; with several replicas on one database, what the other replicas
hold leased counts as spent (at most --quota-lease each; docs/quotas.md).

EXAMPLES
  latchkey get-quota --access-key-id LKIAEXAMPLEEXAMPLE23
  latchkey get-quota --access-key-id LKIAEXAMPLEEXAMPLE23 --output json
  latchkey get-quota --identity-id idn_abcdefghijklmnop`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if err := oneOwner(id, identityID); err != nil {
				return err
			}
			if identityID != "" {
				v, err := cl.GetIdentityQuota(cmd.Context(), s.account, identityID)
				if err != nil {
					return err
				}
				out := identityQuotaView(identityID, v.Quota)
				out.JSON = v
				return p.Print(out)
			}
			v, err := cl.GetQuota(cmd.Context(), id)
			if err != nil {
				return err
			}
			out := quotaView(id, v.Quota)
			out.JSON = v
			return p.Print(out)
		}),
	}
	cmd.Flags().StringVar(&id, "access-key-id", "", "key to look at")
	cmd.Flags().StringVar(&identityID, "identity-id", "", "identity to look at")
	return cmd
}
