package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newCreatePrincipalCmd() *cobra.Command {
	var (
		name, role       string
		profile, credsAt string
	)
	cmd := &cobra.Command{
		Use:   "create-principal --principal-name NAME --role ROLE",
		Short: "Create an admin principal (a person or automation) with its first access key",
		Long: `Create an admin principal: a person or an automation that manages keys with
an access key of its own. Roles:
  operator  everything, in every account (only operators create operators)
  admin     everything in one account
  viewer    reads one account, changes nothing
  verifier  may only call POST /v1/verify, for one account (a gateway or an
            API that checks its callers' keys)

The principal's first key is created with it. Its secret is shown once, or,
with --save-to-profile, written to a credentials profile (mode 0600) and not
shown at all: prefer that, and hand the file over.

JSON OUTPUT
  {"account", "name", "role", "created_at",
   "access_key": {<access key fields>, "secret_access_key"}}
  With --save-to-profile, the secret is left out and "saved_to_profile" and
  "credentials_file" say where it went.

EXAMPLES
  latchkey create-principal --principal-name ci --role admin --save-to-profile ci
  latchkey create-principal --principal-name gateway --role verifier --save-to-profile gateway
  latchkey create-principal --account acme --principal-name alice --role admin`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			r, err := choice("role", role, latchkey.Roles())
			if err != nil {
				return err
			}
			if err := latchkey.ValidateName("--principal-name", name); err != nil {
				return UsageErrorf("%s", errMessage(err))
			}
			if credsAt == "" {
				credsAt = s.credentialsFile()
			}
			if profile != "" {
				if err := s.checkSaveTarget(credsAt, profile); err != nil {
					return err
				}
			}
			pr, err := cl.CreatePrincipal(cmd.Context(), client.CreatePrincipalInput{Account: s.account, Name: name, Role: r})
			if err != nil {
				return err
			}
			if profile == "" {
				warnSecretOnce(p)
				return p.Print(keyCreatedView(p, pr, pr.AccessKey, "", ""))
			}
			if err := s.saveKey(p.info, p.err, credsAt, profile, pr.AccessKey.ID, pr.AccessKey.SecretAccessKey); err != nil {
				return err
			}
			js := struct {
				latchkey.Principal
				AccessKey savedKey `json:"access_key"`
			}{pr.Principal, savedKey{AccessKey: pr.AccessKey.AccessKey, Profile: profile, File: credsAt}}
			return p.Print(keyCreatedView(p, js, pr.AccessKey, profile, credsAt))
		}, need{"principal-name", &name, "ci"}, need{"role", &role, "admin"}),
	}
	cmd.Flags().StringVar(&name, "principal-name", "", "name of the new principal (required)")
	cmd.Flags().StringVar(&role, "role", "", latchkey.Choices(latchkey.Roles())+" (required)")
	cmd.Flags().StringVar(&profile, "save-to-profile", "", "write the key to this credentials profile instead of printing the secret")
	cmd.Flags().StringVar(&credsAt, "credentials-file", "", "credentials file for --save-to-profile (default ~/.latchkey/credentials, env "+EnvCredentialsFile+")")
	completeChoices(cmd, "role", latchkey.Roles())
	return cmd
}

func (p *printer) principalsView(js any, ps ...*latchkey.Principal) view {
	v := view{JSON: js, Headers: []string{"PRINCIPAL", "ROLE", "ACCOUNT", "AGE"}, Empty: "No principals."}
	for _, pr := range ps {
		v.Rows = append(v.Rows, []cell{c(pr.Name), c(string(pr.Role)), c(pr.Account), p.ageCell(pr.CreatedAt)})
	}
	return v
}
