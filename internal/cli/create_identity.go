package cli

import (
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

// identityFlags are the flags create-identity and update-identity share.
type identityFlags struct {
	externalID, metadata, rateLimit string
	remaining, refillAmount, low    int64
	refillInterval                  string
}

func (f *identityFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.externalID, "external-id", "", "your own ID for the customer, unique in the account (\"\" removes it)")
	fl.StringVar(&f.metadata, "metadata", "", `a JSON object returned by every verification, e.g. '{"plan":"pro"}' ('{}' removes it)`)
	fl.StringVar(&f.rateLimit, "rate-limit", "", `shared by every key of the identity: N/s, N/s:BURST, N/m, e.g. 100/s:200 ("none" removes it)`)
	fl.Int64Var(&f.remaining, "quota-remaining", 0, "a shared quota: what every key of the identity may spend now, together")
	fl.Int64Var(&f.refillAmount, "refill-amount", 0, "the shared quota's budget at each refill")
	fl.StringVar(&f.refillInterval, "refill-interval", "", `refill interval: a duration ("24h", "every 6h"), daily, or monthly:D`)
	fl.Int64Var(&f.low, "low-threshold", 0, "send quota.low when what the shared quota has left falls to this")
}

// quota reads the quota flags; nil when --quota-remaining is not given.
func (f *identityFlags) quota(cmd *cobra.Command) (*latchkey.Quota, error) {
	fl := cmd.Flags()
	if !fl.Changed("quota-remaining") {
		if fl.Changed("refill-amount") || fl.Changed("refill-interval") || fl.Changed("low-threshold") {
			return nil, UsageErrorf("--refill-amount, --refill-interval and --low-threshold go with --quota-remaining")
		}
		return nil, nil
	}
	if fl.Changed("refill-amount") != fl.Changed("refill-interval") {
		return nil, UsageErrorf("--refill-amount and --refill-interval go together, e.g. --refill-amount 1000 --refill-interval monthly:1")
	}
	q := &latchkey.Quota{Remaining: f.remaining, LowThreshold: f.low}
	if fl.Changed("refill-amount") {
		q.Refill = &latchkey.Refill{Amount: f.refillAmount, Interval: f.refillInterval}
	}
	if err := q.Validate(); err != nil {
		return nil, UsageErrorf("%s", quotaFlagMessage(latchkey.ErrorMessage(err)))
	}
	return q, nil
}

// quotaFlagMessage names the flags in a quota validation message.
func quotaFlagMessage(msg string) string {
	return strings.NewReplacer("quota.remaining", "--quota-remaining", "quota.low_threshold", "--low-threshold",
		"quota.refill.amount", "--refill-amount", "refill.interval", "--refill-interval").Replace(msg)
}

func (s *state) newCreateIdentityCmd() *cobra.Command {
	var (
		name string
		f    identityFlags
	)
	cmd := &cobra.Command{
		Use:   "create-identity --name NAME",
		Short: "Create an identity: a customer whose applications share a rate limit and a quota",
		Long: `Create an identity: one customer of your API. Put its applications in it
(create-application --identity, update-application --identity) and every key of
every one of them draws from the identity's rate limit and quota, so that the
customer cannot get more by making more keys. A key's own quota, if it has one,
must pay too.

--external-id is your own ID for the customer (unique in the account), and
--metadata a JSON object; /v1/verify returns both under "identity", and the
gateways send the identity's ID upstream as X-Latchkey-Identity-Id.

JSON OUTPUT
  {"id", "account", "name", "external_id", "metadata", "rate_limit", "quota",
   "created_at", "updated_at", "application_count"}

EXAMPLES
  latchkey create-identity --name acme --external-id cus_42
  latchkey create-identity --name acme --quota-remaining 100000 --refill-amount 100000 --refill-interval monthly:1 --low-threshold 10000
  latchkey create-identity --name acme --rate-limit 100/s:200 --metadata '{"plan":"pro"}'`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if err := latchkey.ValidateName("--name", name); err != nil {
				return UsageErrorf("%s", errMessage(err))
			}
			in := latchkey.NewIdentity{Name: name}
			var err error
			if in.ExternalID, err = externalIDFlag(f.externalID); err != nil {
				return err
			}
			if cmd.Flags().Changed("metadata") {
				if in.Metadata, err = metadataFlag(f.metadata); err != nil {
					return err
				}
			}
			if in.RateLimit, err = parseRateLimit(f.rateLimit); err != nil {
				return err
			}
			if in.Quota, err = f.quota(cmd); err != nil {
				return err
			}
			id, err := cl.CreateIdentity(cmd.Context(), s.account, in)
			if err != nil {
				return err
			}
			return p.Print(p.identitiesView(id, id))
		}, need{"name", &name, "acme"}),
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the identity, unique in the account (required)")
	f.register(cmd)
	return cmd
}

// identitiesView is the table of identities; js is the JSON document.
func (p *printer) identitiesView(js any, ids ...*latchkey.Identity) view {
	v := view{JSON: js, Headers: []string{"IDENTITY ID", "NAME", "EXTERNAL ID", "APPS", "RATE LIMIT", "QUOTA LEFT", "AGE"}, Empty: "No identities."}
	for _, id := range ids {
		rl, q := "-", "-"
		if id.RateLimit != nil {
			rl = restrictionSummary(&latchkey.Restrictions{RateLimit: id.RateLimit})
		}
		if id.Quota != nil {
			q = i64(id.Quota.Remaining)
		}
		v.Rows = append(v.Rows, []cell{c(id.ID), c(id.Name), c(dash(id.ExternalID)), c(itoa(id.ApplicationCount)), c(rl), c(q), p.ageCell(id.CreatedAt)})
	}
	return v
}
