package cli

import (
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newDeleteApplicationCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "delete-application --application-name NAME",
		Short: "Delete an application that owns no access keys",
		Long: `Delete an application. It must own no access keys: delete them first
(list-access-keys --application-name NAME shows them), so that no key is
removed by accident. Prints nothing with --output json.

EXAMPLES
  latchkey delete-application --application-name billing`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if err := cl.DeleteApplication(cmd.Context(), s.account, name); err != nil {
				return err
			}
			p.Infof("Deleted application %q.\n", name)
			return nil
		}, need{"application-name", &name, "billing"}),
	}
	cmd.Flags().StringVar(&name, "application-name", "", "application to delete (required)")
	return cmd
}
