package sqlstore

import (
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// TestSplitPlainUsage: keys with nothing but uses (and perhaps a last use)
// go to the narrow statement; any refusal or would-be refusal, counted or
// timed, sends the key to the full one. Both keep ID order.
func TestSplitPlainUsage(t *testing.T) {
	at := time.Unix(1_700_000_000, 0).UTC()
	use := &latchkey.Use{At: at, IP: "192.0.2.1", UserAgent: "app/1"}
	rej := &latchkey.Rejection{At: at, IP: "192.0.2.2", Reason: latchkey.CodeExpired}
	tests := []struct {
		name  string
		u     latchkey.UsageUpdate
		plain bool
	}{
		{"use with a time", latchkey.UsageUpdate{Uses: 1, LastUsed: use}, true},
		{"uses without a time", latchkey.UsageUpdate{Uses: 3}, true},
		{"rejection count only", latchkey.UsageUpdate{Uses: 1, Rejections: 1}, false},
		{"rejection time only", latchkey.UsageUpdate{LastRejected: rej}, false},
		{"would-deny count only", latchkey.UsageUpdate{WouldDeny: 1}, false},
		{"would-deny time only", latchkey.UsageUpdate{Uses: 1, LastUsed: use, LastWouldDeny: rej}, false},
	}
	var batch []latchkey.UsageUpdate
	var wantPlain, wantFull []string
	for i, tt := range tests {
		tt.u.AccessKeyID = string(rune('a' + i))
		batch = append(batch, tt.u)
		if tt.plain {
			wantPlain = append(wantPlain, tt.u.AccessKeyID)
		} else {
			wantFull = append(wantFull, tt.u.AccessKeyID)
		}
	}
	plain, full := splitPlainUsage(batch)
	ids := func(us []latchkey.UsageUpdate) (out []string) {
		for _, u := range us {
			out = append(out, u.AccessKeyID)
		}
		return out
	}
	if got := ids(plain); !slices.Equal(got, wantPlain) {
		t.Errorf("plain = %v, want %v", got, wantPlain)
	}
	if got := ids(full); !slices.Equal(got, wantFull) {
		t.Errorf("full = %v, want %v", got, wantFull)
	}
}
