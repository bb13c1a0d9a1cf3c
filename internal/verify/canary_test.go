package verify

import (
	"net/netip"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

type canaryCount struct{ ids []string }

func (c *canaryCount) CanaryUsed(e *Entry, _ *Request, _ time.Time) { c.ids = append(c.ids, e.ID) }

// TestCanaryAlertsWhenRefusedEarly: a canary raises its alert even when
// the call is refused before its credential is judged: from a throttled
// address (a thief who tried the dump's dead keys first), or among several
// credentials (CREDENTIAL_AMBIGUOUS, whatever the others are). A real key
// in the same places raises nothing.
func TestCanaryAlertsWhenRefusedEarly(t *testing.T) {
	f := newFixture(t)
	f.v.Guard = NewGuard(3, 60)
	hook := &canaryCount{}
	f.v.Canary = hook
	real := f.add(nil, nil, nil)
	id, _ := keyformat.NewID()
	canary, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	f.ix.Put(&latchkey.AccessKey{ID: id, Account: "default", Application: "app", Status: latchkey.StatusActive,
		SecretDigest: keyformat.Sum(canary), Canary: true})
	unknown, _ := keyformat.NewSecret()
	thief := netip.MustParseAddr("198.51.100.66")
	for range 3 {
		f.v.Verify(&Request{Secret: unknown, IP: thief})
	}
	tests := []struct {
		name   string
		req    Request
		code   latchkey.Code
		alerts int
	}{
		{"canary from a throttled address", Request{Secret: canary, IP: thief}, latchkey.CodeThrottled, 1},
		{"real key from a throttled address", Request{Secret: real, IP: thief}, latchkey.CodeThrottled, 0},
		{"canary second", Request{Secret: real, Extra: []string{canary}}, latchkey.CodeCredentialAmbiguous, 1},
		{"canary first", Request{Secret: canary, Extra: []string{unknown}}, latchkey.CodeCredentialAmbiguous, 1},
		{"canary among unreadable ones", Request{Extra: []string{"", "garbage", canary}}, latchkey.CodeCredentialAmbiguous, 1},
		{"two real ones", Request{Secret: real, Extra: []string{real}}, latchkey.CodeCredentialAmbiguous, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook.ids = nil
			if got := f.v.Verify(&tt.req).Code; got != tt.code {
				t.Errorf("code %s, want %s", got, tt.code)
			}
			if len(hook.ids) != tt.alerts || (tt.alerts > 0 && hook.ids[0] != id) {
				t.Errorf("canary hook told %v, want %d alert(s) for %s", hook.ids, tt.alerts, id)
			}
		})
	}
}
