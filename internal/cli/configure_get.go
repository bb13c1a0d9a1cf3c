package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/spf13/cobra"
)

// profileFields are the settings a profile holds, in file order.
var profileFields = []string{credfile.KeyAccessKeyID, credfile.KeySecretAccessKey, credfile.KeyEndpointURL}

func (s *state) newConfigureGetCmd() *cobra.Command {
	var (
		credsAt string
		show    bool
	)
	cmd := &cobra.Command{
		Use:   "get FIELD [--profile NAME]",
		Short: "Print one setting of a profile, for scripts",
		Long: `Print one setting of a profile of the credentials file, and nothing else, so
that a script can capture it: latchkey_access_key_id,
latchkey_secret_access_key or endpoint_url (or any other key the profile
holds). Like 'aws configure get', it reads the file only: the
LATCHKEY_ACCESS_KEY_ID and LATCHKEY_SECRET_ACCESS_KEY variables and
--endpoint-url play no part. The profile is --profile, else LATCHKEY_PROFILE,
else "default".

The secret is read from the file, so it never has to be typed or pasted
into a command line (and from there into shell history). Capture it into a
variable; it is then only in the shell's memory:

  ADMIN=$(latchkey configure get latchkey_secret_access_key)

When standard output is a terminal, get refuses to print the secret (it
would stay on screen and in the scrollback) and says how to capture it;
--show prints it anyway.

Exit status: 0 with the value printed; 1 when the profile or the setting
is not in the file (nothing is printed, the reason goes to standard error);
2 for a FIELD it does not know, or a secret refused on a terminal.

EXAMPLES
  ADMIN=$(latchkey configure get latchkey_secret_access_key)
  curl -H "Authorization: Bearer $ADMIN" "$(latchkey configure get endpoint_url)/v1/applications"

  # Another profile, in another file
  SECRET=$(latchkey configure get latchkey_secret_access_key --profile billing \
      --credentials-file /etc/billing/credentials)

  latchkey configure get latchkey_access_key_id --profile staging`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return UsageErrorf("%s takes one FIELD, one of %s (see '%s --help')",
					cmd.CommandPath(), strings.Join(profileFields, ", "), cmd.CommandPath())
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return profileFields, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.runConfigureGet(cmd, args[0], credsAt, show)
		},
	}
	cmd.Flags().StringVar(&credsAt, "credentials-file", "", "credentials file to read (default ~/.latchkey/credentials, env "+EnvCredentialsFile+")")
	cmd.Flags().BoolVar(&show, "show", false, "print the secret even when standard output is a terminal")
	return cmd
}

func (s *state) runConfigureGet(cmd *cobra.Command, field, credsAt string, show bool) error {
	credsAt, name, f, err := s.profileFile(credsAt)
	if err != nil {
		return err
	}
	p := f.Profile(name)
	if _, held := p[field]; !held && !slices.Contains(profileFields, field) {
		return UsageErrorf("FIELD %q: expected one of %s", field, strings.Join(profileFields, ", "))
	}
	if p == nil {
		return fmt.Errorf("profile %q is not in %s%s", name, credsAt, knownProfiles(f.Profiles()))
	}
	v := p[field]
	if v == "" {
		return fmt.Errorf("profile %q in %s has no %s", name, credsAt, field)
	}
	if field == credfile.KeySecretAccessKey && !show && s.env.IsTerminal(cmd.OutOrStdout()) {
		return UsageErrorf("not printing the secret access key to a terminal, where it would stay on screen and in the scrollback; "+
			"capture it instead, e.g. SECRET=$(%s %s), or add --show to print it here", cmd.CommandPath(), field)
	}
	for _, w := range credfile.Warnings(credsAt) {
		fmt.Fprintf(cmd.ErrOrStderr(), "latchkey: warning: %s\n", w)
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), v)
	return err
}

// completeProfiles offers the profile names of the credentials file.
func (s *state) completeProfiles(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	path := s.credentialsFile()
	if fl := cmd.Flags().Lookup("credentials-file"); fl != nil && fl.Value.String() != "" {
		path = fl.Value.String()
	}
	f, err := credfile.Read(path)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return f.Profiles(), cobra.ShellCompDirectiveNoFileComp
}
