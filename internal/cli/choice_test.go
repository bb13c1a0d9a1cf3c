package cli_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cli"
)

// TestChoiceFlags: every flag that takes one of a fixed set of values names
// them all in its help and offers exactly them as shell completions, so
// that what the CLI suggests is what the API accepts.
func TestChoiceFlags(t *testing.T) {
	tests := []struct {
		name     string
		command  []string
		flag     string
		accepted []string
	}{
		{"status", []string{"update-access-key"}, "status", strs(latchkey.Statuses())},
		{"role", []string{"create-principal"}, "role", strs(latchkey.Roles())},
		{"kind", []string{"list-access-keys"}, "kind", latchkey.KeyKinds()},
		{"action", []string{"list-audit-events"}, "action", latchkey.AuditActions()},
		{"delivery status", []string{"list-webhook-deliveries"}, "status", latchkey.DeliveryStatuses()},
		{"create-webhook event", []string{"create-webhook"}, "event", latchkey.EventTypes()},
		{"update-webhook event", []string{"update-webhook"}, "event", latchkey.EventTypes()},
		{"output", []string{"list-applications"}, "output", []string{"json", "table", "text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := cli.NewRoot()
			cmd, _, err := root.Find(tt.command)
			if err != nil {
				t.Fatal(err)
			}
			f := cmd.Flag(tt.flag)
			if f == nil {
				t.Fatalf("%s has no --%s", cmd.Name(), tt.flag)
			}
			for _, a := range tt.accepted {
				if !strings.Contains(f.Usage, a) {
					t.Errorf("--%s usage %q does not name %q", tt.flag, f.Usage, a)
				}
			}
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&bytes.Buffer{})
			root.SetArgs(append(append([]string{"__complete"}, tt.command...), "--"+tt.flag, ""))
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if !strings.HasPrefix(l, ":") { // the last line is the directive
					got = append(got, l)
				}
			}
			if !slices.Equal(got, tt.accepted) {
				t.Errorf("completions of --%s = %q, want %q", tt.flag, got, tt.accepted)
			}
		})
	}
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}
