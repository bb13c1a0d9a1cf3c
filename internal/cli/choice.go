package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/spf13/cobra"
)

// choice checks the value of flag --name against accepted, exactly: the
// API's values are case-sensitive, so the CLI refuses "inactive" too, and
// names every accepted value (with a hint when only the case is wrong).
// An empty value is the caller's to handle.
func choice[T ~string](name, v string, accepted []T) (T, error) {
	c, err := latchkey.ParseChoice("--"+name, v, accepted)
	if err != nil {
		return "", UsageErrorf("--%s %q: expected %s%s", name, v, latchkey.Choices(accepted), latchkey.CaseHint(v, accepted))
	}
	return c, nil
}

// eventFlags checks the values of --event.
func eventFlags(events []string) error {
	for _, e := range events {
		if _, err := choice("event", e, latchkey.EventTypes()); err != nil {
			return err
		}
	}
	return nil
}

// completeChoices offers accepted as the shell completions of flag --name.
func completeChoices[T ~string](cmd *cobra.Command, name string, accepted []T) {
	s := make([]string, len(accepted))
	for i, a := range accepted {
		s[i] = string(a)
	}
	_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(s, cobra.ShellCompDirectiveNoFileComp))
}
