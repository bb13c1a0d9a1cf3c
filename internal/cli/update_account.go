package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateAccountCmd() *cobra.Command {
	var name, prefix string
	var brand latchkey.Branding
	var clearBrand bool
	cmd := &cobra.Command{
		Use:   "update-account --account-name NAME [--key-prefix PREFIX] [--brand-* ...]",
		Short: "Change an account's key prefix or portal branding; operators and the account's admins",
		Long: `Change the prefix of the secrets of an account's new application keys
(acme_live_ instead of lksk_; "" goes back to lksk_): 3 to 20 characters
of a-z, 0-9 and _, starting with a letter and ending with _. Prefixes
starting with lk, and lksk_, lkak_ and whsec_, are latchkey's.

Keys made before keep their secrets and keep working: only keys created
(or rolled) afterwards get the new prefix. The change is audited
(account.update). Scanners learn the prefixes from the server
(latchkey scan --verify) or from --prefix; print gitleaks rules for them
with latchkey scan rules.

The --brand-* flags set how the self-service portal (/portal) shows the
account to its API consumers: --brand-name, --brand-logo-url (https only),
--brand-primary-color and --brand-accent-color (#rgb or #rrggbb). Each
flag given replaces that field and keeps the others; --clear-branding
removes them all. The change is audited (account.update).

JSON OUTPUT
  {"name", "key_prefix", "branding", "created_at"}

EXAMPLES
  latchkey update-account --account-name acme --key-prefix acme_live_
  latchkey update-account --account-name acme --key-prefix ""
  latchkey update-account --account-name acme --brand-name "Acme APIs" --brand-logo-url https://cdn.acme.example/logo.svg --brand-primary-color '#0a5fff'`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			fl := cmd.Flags()
			brandFlags := []struct {
				flag, field string
				v           *string
			}{{"brand-name", "name", &brand.Name}, {"brand-logo-url", "logo_url", &brand.LogoURL},
				{"brand-primary-color", "primary_color", &brand.PrimaryColor}, {"brand-accent-color", "accent_color", &brand.AccentColor}}
			branding := clearBrand
			for _, b := range brandFlags {
				branding = branding || fl.Changed(b.flag)
			}
			if !fl.Changed("key-prefix") && !branding {
				return UsageErrorf("nothing to change: give --key-prefix (such as acme_live_, or \"\" for lksk_) or a --brand-* flag")
			}
			var u latchkey.AccountUpdate
			if fl.Changed("key-prefix") {
				if err := checkKeyPrefixFlag(prefix); err != nil {
					return err
				}
				u.KeyPrefix = &prefix
			}
			if branding {
				next := latchkey.Branding{}
				if !clearBrand {
					accs, err := cl.ListAccounts(cmd.Context())
					if err != nil {
						return err
					}
					for _, a := range accs {
						if a.Name == name && a.Branding != nil {
							next = *a.Branding
						}
					}
				}
				cur := map[string]*string{"name": &next.Name, "logo_url": &next.LogoURL, "primary_color": &next.PrimaryColor, "accent_color": &next.AccentColor}
				for _, b := range brandFlags {
					if fl.Changed(b.flag) {
						*cur[b.field] = *b.v
					}
				}
				if err := next.Validate(); err != nil {
					return UsageErrorf("--brand-*: %s", errMessage(err))
				}
				u.Branding = &next
			}
			acc, err := cl.UpdateAccount(cmd.Context(), name, u)
			if err != nil {
				return err
			}
			return p.Print(p.accountsView(acc, acc))
		}, need{"account-name", &name, "acme"}),
	}
	cmd.Flags().StringVar(&name, "account-name", "", "account to change (required)")
	cmd.Flags().StringVar(&prefix, "key-prefix", "", `prefix of the account's new secrets, such as acme_live_ ("" for lksk_)`)
	cmd.Flags().StringVar(&brand.Name, "brand-name", "", "name the portal shows for the account")
	cmd.Flags().StringVar(&brand.LogoURL, "brand-logo-url", "", "https URL of the logo the portal shows")
	cmd.Flags().StringVar(&brand.PrimaryColor, "brand-primary-color", "", "portal's primary colour, #rgb or #rrggbb")
	cmd.Flags().StringVar(&brand.AccentColor, "brand-accent-color", "", "portal's accent colour, #rgb or #rrggbb")
	cmd.Flags().BoolVar(&clearBrand, "clear-branding", false, "remove the portal branding (other --brand-* flags then set the new one)")
	return cmd
}
