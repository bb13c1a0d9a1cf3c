package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateAccountCmd() *cobra.Command {
	var name, prefix string
	cmd := &cobra.Command{
		Use:   "update-account --account-name NAME --key-prefix PREFIX",
		Short: "Change an account's key prefix; operators and the account's admins",
		Long: `Change the prefix of the secrets of an account's new application keys
(acme_live_ instead of lksk_; "" goes back to lksk_): 3 to 20 characters
of a-z, 0-9 and _, starting with a letter and ending with _. Prefixes
starting with lk, and lksk_, lkak_ and whsec_, are latchkey's.

Keys made before keep their secrets and keep working: only keys created
(or rolled) afterwards get the new prefix. The change is audited
(account.update). Scanners learn the prefixes from the server
(latchkey scan --verify) or from --prefix; print gitleaks rules for them
with latchkey scan rules.

JSON OUTPUT
  {"name", "key_prefix", "created_at"}

EXAMPLES
  latchkey update-account --account-name acme --key-prefix acme_live_
  latchkey update-account --account-name acme --key-prefix ""`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if !cmd.Flags().Changed("key-prefix") {
				return UsageErrorf("nothing to change: give --key-prefix (such as acme_live_, or \"\" for lksk_)")
			}
			if err := checkKeyPrefixFlag(prefix); err != nil {
				return err
			}
			acc, err := cl.UpdateAccount(cmd.Context(), name, latchkey.AccountUpdate{KeyPrefix: &prefix})
			if err != nil {
				return err
			}
			return p.Print(p.accountsView(acc, acc))
		}, need{"account-name", &name, "acme"}),
	}
	cmd.Flags().StringVar(&name, "account-name", "", "account to change (required)")
	cmd.Flags().StringVar(&prefix, "key-prefix", "", `prefix of the account's new secrets, such as acme_live_ ("" for lksk_)`)
	return cmd
}
