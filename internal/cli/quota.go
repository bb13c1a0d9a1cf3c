package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateQuotaCmd() *cobra.Command {
	var (
		id                string
		remaining, topUp  int64
		refillAmount, low int64
		refillInterval    string
		remove            bool
	)
	cmd := &cobra.Command{
		Use:   "update-quota --access-key-id ID (--remaining N [--refill-amount N --refill-interval I] [--low-threshold N] | --top-up N | --remove)",
		Short: "Set, top up or remove an access key's quota (a budget of calls)",
		Long: `Set an access key's quota: --remaining is what it may spend now, and with
--refill-amount and --refill-interval the budget is set back to the amount at
each boundary (24h, "every 6h", daily, or monthly:D for the D-th of each month
at 00:00 UTC). --low-threshold sends the quota.low webhook once a period when
the quota falls to it. --top-up adds to what is left; --remove removes the
quota. Every change is audited (access_key.quota_update).

EXAMPLES
  latchkey update-quota --access-key-id LKIAEXAMPLEEXAMPLE23 --remaining 10000 --refill-amount 10000 --refill-interval monthly:1 --low-threshold 1000
  latchkey update-quota --access-key-id LKIAEXAMPLEEXAMPLE23 --top-up 500
  latchkey update-quota --access-key-id LKIAEXAMPLEEXAMPLE23 --remove`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			f := cmd.Flags()
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
			return p.Print(quotaView(id, q))
		}, need{"access-key-id", &id, "LKIAEXAMPLEEXAMPLE23"}),
	}
	cmd.Flags().StringVar(&id, "access-key-id", "", "key whose quota to change (required)")
	cmd.Flags().Int64Var(&remaining, "remaining", 0, "what the quota may spend now")
	cmd.Flags().Int64Var(&refillAmount, "refill-amount", 0, "budget at each refill")
	cmd.Flags().StringVar(&refillInterval, "refill-interval", "", `refill interval: a duration ("24h", "every 6h"), daily, or monthly:D`)
	cmd.Flags().Int64Var(&low, "low-threshold", 0, "send quota.low when what is left falls to this")
	cmd.Flags().Int64Var(&topUp, "top-up", 0, "add this to what is left")
	cmd.Flags().BoolVar(&remove, "remove", false, "remove the quota")
	return cmd
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
	var id string
	cmd := &cobra.Command{
		Use:   "get-quota --access-key-id ID",
		Short: "Show an access key's quota: what is left, when it refills, and its history",
		Long: `Show what an access key's quota has left, when it refills next, and its
latest changes (set, top_up, refill, exhausted, removed), newest first.

REMAINING is what can still be granted as the server that answers knows
it; LEASED is the part of it that replicas hold leased from the ledger and
have not spent. With one replica, or with --rate-limit-store (Redis), both
are exact; with several replicas on one database, what the other replicas
hold leased counts as spent (at most --quota-lease each; docs/quotas.md).

EXAMPLES
  latchkey get-quota --access-key-id LKIAEXAMPLEEXAMPLE23
  latchkey get-quota --access-key-id LKIAEXAMPLEEXAMPLE23 --output json`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			v, err := cl.GetQuota(cmd.Context(), id)
			if err != nil {
				return err
			}
			out := quotaView(id, v.Quota)
			out.JSON = v
			return p.Print(out)
		}, need{"access-key-id", &id, "LKIAEXAMPLEEXAMPLE23"}),
	}
	cmd.Flags().StringVar(&id, "access-key-id", "", "key to look at (required)")
	return cmd
}
