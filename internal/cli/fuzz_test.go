package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

// FuzzParseRateLimit feeds --rate-limit values. A value is refused with a
// usage error that names the flag, or gives a rate limit the CLI can send:
// JSON-encodable, with a positive rate, that the server then accepts or
// refuses with InvalidArgument.
func FuzzParseRateLimit(f *testing.F) {
	for _, s := range []string{"10/s:20,600/m", "1.5/s", "60/m", "none", "", "0/s", "1/s:0", "5/h", "1e400/s", "NaN/s", "Inf/s", "-1/m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rl, err := parseRateLimit(s)
		if err != nil {
			if !strings.Contains(err.Error(), "--rate-limit") {
				t.Fatalf("parseRateLimit(%q): %v does not name the flag", s, err)
			}
			return
		}
		if rl == nil {
			return
		}
		if !(rl.PerSecond > 0 || rl.PerMinute > 0) || rl.Burst < 0 {
			t.Fatalf("parseRateLimit(%q) = %+v", s, rl)
		}
		if _, err := json.Marshal(rl); err != nil {
			t.Fatalf("parseRateLimit(%q) = %+v, which cannot be sent: %v", s, rl, err)
		}
		if err := (&latchkey.Restrictions{RateLimit: rl}).Validate(); err != nil && latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Fatalf("Validate: %v", err)
		}
	})
}
