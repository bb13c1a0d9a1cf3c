package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newListApplicationsCmd() *cobra.Command {
	var maxItems int
	cmd := &cobra.Command{
		Use:   "list-applications",
		Short: "List applications and how many access keys each owns",
		Long: `List the applications of your account (or of --account, for operators),
by name, with how many access keys each owns. Every page is fetched.

JSON OUTPUT
  {"applications": [{"account", "name", "description", "created_at", "key_count"}, ...]}

EXAMPLES
  latchkey list-applications
  latchkey list-applications --output json | jq -r '.applications[].name'`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if maxItems < 0 {
				return UsageErrorf("--max-items %d: expected 0 (all) or more", maxItems)
			}
			apps := []*latchkey.Application{}
			for a, err := range cl.Applications(cmd.Context(), client.ListApplicationsInput{Account: s.account}) {
				if err != nil {
					return err
				}
				apps = append(apps, a)
				if maxItems > 0 && len(apps) == maxItems {
					break
				}
			}
			return p.Print(p.applicationsView(map[string]any{"applications": apps}, apps...))
		}),
	}
	cmd.Flags().IntVar(&maxItems, "max-items", 0, "stop after this many applications (0: all)")
	return cmd
}
