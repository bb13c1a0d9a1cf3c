package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/keyformat"
	"github.com/spf13/cobra"
)

func (s *state) newCreateAccountCmd() *cobra.Command {
	var name, prefix string
	cmd := &cobra.Command{
		Use:   "create-account --account-name NAME [--key-prefix PREFIX]",
		Short: "Create an account (a tenant); operators only",
		Long: `Create an account: a tenant with its own applications, keys and admins.
Single-tenant installations never need one: the "default" account exists.
Only operators may create accounts; give the tenant an admin with
create-principal --account NAME --role admin.

--key-prefix gives the secrets of the account's application keys a prefix
of its own instead of lksk_ (acme_live_ + 40 random + 6 checksum
characters): 3 to 20 characters of a-z, 0-9 and _, starting with a letter
and ending with _. Prefixes starting with lk, and lksk_, lkak_ and whsec_,
are latchkey's. Change it later with update-account.

JSON OUTPUT
  {"name", "key_prefix", "created_at"}

EXAMPLES
  latchkey create-account --account-name acme
  latchkey create-account --account-name acme --key-prefix acme_live_
  latchkey create-principal --account acme --principal-name alice --role admin --save-to-profile acme-alice`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			var set latchkey.AccountUpdate
			if cmd.Flags().Changed("key-prefix") {
				if err := checkKeyPrefixFlag(prefix); err != nil {
					return err
				}
				set.KeyPrefix = &prefix
			}
			acc, err := cl.CreateAccountWith(cmd.Context(), name, set)
			if err != nil {
				return err
			}
			return p.Print(p.accountsView(acc, acc))
		}, need{"account-name", &name, "acme"}),
	}
	cmd.Flags().StringVar(&name, "account-name", "", "name of the new account (required)")
	cmd.Flags().StringVar(&prefix, "key-prefix", "", "prefix of the account's new secrets, such as acme_live_ (default lksk_)")
	return cmd
}

// checkKeyPrefixFlag checks --key-prefix before anything is sent; "" (back
// to lksk_) passes.
func checkKeyPrefixFlag(p string) error {
	if p == "" {
		return nil
	}
	if err := keyformat.ValidatePrefix(p); err != nil {
		return UsageErrorf("--key-prefix %q: %v", p, err)
	}
	return nil
}

func (p *printer) accountsView(js any, accs ...*latchkey.Account) view {
	v := view{JSON: js, Headers: []string{"NAME", "KEY PREFIX", "AGE"}, Empty: "No accounts."}
	for _, a := range accs {
		prefix := a.KeyPrefix
		if prefix == "" {
			prefix = keyformat.SecretPrefix
		}
		v.Rows = append(v.Rows, []cell{c(a.Name), c(prefix), p.ageCell(a.CreatedAt)})
	}
	return v
}
