package cli

import (
	"github.com/spf13/cobra"
)

func (s *state) newDeletePrincipalCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "delete-principal --principal-name NAME",
		Short: "Delete an admin principal and its access keys",
		Long: `Delete an admin principal and, with it, every access key it owns: it can no
longer sign in. A principal cannot delete itself. Prints nothing with
--output json.

EXAMPLES
  latchkey delete-principal --principal-name ci`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required("principal-name", name, "ci"); err != nil {
				return err
			}
			p, err := s.printer(cmd)
			if err != nil {
				return err
			}
			cl, err := s.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.DeletePrincipal(cmd.Context(), s.account, name); err != nil {
				return err
			}
			p.Infof("Deleted principal %q and its access keys.\n", name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "principal-name", "", "principal to delete (required)")
	return cmd
}
