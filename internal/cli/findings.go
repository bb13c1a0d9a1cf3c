package cli

import (
	"strings"

	"github.com/latchkey/latchkey"
)

// findingsCell lists a key's hygiene findings, comma-separated ("-" for
// none), red for exposed or overdue, yellow otherwise.
func findingsCell(fs []latchkey.Finding) cell {
	if len(fs) == 0 {
		return cell{Text: "-"}
	}
	names := make([]string, len(fs))
	color := colorYellow
	for i, f := range fs {
		names[i] = string(f)
		if f == latchkey.FindingExposed || f == latchkey.FindingRotationDue || f == latchkey.FindingExpired {
			color = colorRed
		}
	}
	return cell{Text: strings.Join(names, ","), Color: color}
}
