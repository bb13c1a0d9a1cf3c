package latchkey_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		str  string
		err  bool
	}{
		{"90d", 90 * latchkey.Day, "90d", false},
		{"0.5d", 12 * time.Hour, "12h", false},
		{"36h", 36 * time.Hour, "36h", false},
		{"1h30m", 90 * time.Minute, "1h30m", false},
		{"10m", 10 * time.Minute, "10m", false},
		{"45s", 45 * time.Second, "45s", false},
		{"off", 0, "off", false},
		{"0", 0, "off", false},
		{"3650d", 3650 * latchkey.Day, "3650d", false},
		{"3651d", 0, "", true},
		{"-1d", 0, "", true},
		{"500ms", 0, "", true},
		{"ninety days", 0, "", true},
		{"d", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := latchkey.ParseDuration("max_key_age", tt.in)
			if tt.err {
				if latchkey.ErrorCode(err) != latchkey.EINVALID {
					t.Errorf("ParseDuration(%q) = %v, %v; want EINVALID", tt.in, d, err)
				}
				return
			}
			if err != nil || d.D() != tt.want || d.String() != tt.str {
				t.Errorf("ParseDuration(%q) = %v (%s), %v; want %v (%s)", tt.in, d.D(), d, err, tt.want, tt.str)
			}
			var back latchkey.Duration
			b, _ := json.Marshal(d)
			if err := json.Unmarshal(b, &back); err != nil || back != d {
				t.Errorf("JSON round trip of %s: %s, %v", d, b, err)
			}
		})
	}
	var d latchkey.Duration
	if err := json.Unmarshal([]byte(`90`), &d); latchkey.ErrorCode(err) != latchkey.EINVALID {
		t.Errorf("a JSON number: %v", err)
	}
}

func TestPolicySettings(t *testing.T) {
	d30 := latchkey.Duration(30 * latchkey.Day)
	off := latchkey.Duration(0)
	s := latchkey.PolicySettings{MaxKeyAge: &d30, WarnBefore: &off, DeactivateUnusedAfter: &d30}
	want := latchkey.DefaultPolicy()
	want.MaxKeyAge, want.WarnBefore, want.DeactivateUnusedAfter = d30, 0, d30
	if diff := cmp.Diff(want, s.Apply(latchkey.DefaultPolicy())); diff != "" {
		t.Errorf("Apply (-want +got):\n%s", diff)
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
	bad := latchkey.Duration(time.Millisecond)
	if err := (latchkey.PolicySettings{NoticeBefore: &bad}).Validate(); latchkey.ErrorCode(err) != latchkey.EINVALID {
		t.Errorf("Validate(1ms) = %v", err)
	}
	b, _ := json.Marshal(s)
	if string(b) != `{"max_key_age":"30d","warn_before":"off","deactivate_unused_after":"30d"}` {
		t.Errorf("settings JSON %s", b)
	}
}

// TestEvaluate walks a key through the thresholds of a 30-day policy with
// an injected clock: one case just before and one at each threshold.
func TestEvaluate(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := func(n float64) time.Time { return created.Add(time.Duration(n * float64(latchkey.Day))) }
	p := latchkey.Policy{
		MaxKeyAge: latchkey.Duration(30 * latchkey.Day), WarnBefore: latchkey.Duration(7 * latchkey.Day),
		UnusedAfter: latchkey.Duration(10 * latchkey.Day), DeactivateUnusedAfter: latchkey.Duration(20 * latchkey.Day),
		DeleteInactiveAfter: latchkey.Duration(5 * latchkey.Day), NoticeBefore: latchkey.Duration(3 * latchkey.Day),
	}
	restricted := &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}}
	key := func(mod func(k *latchkey.AccessKey)) *latchkey.AccessKey {
		k := &latchkey.AccessKey{ID: "LKIAAAAAAAAAAAAAAAAA", Application: "billing", Status: latchkey.StatusActive,
			CreatedAt: created, Restrictions: restricted, LastUsed: &latchkey.Use{At: day(1)}}
		if mod != nil {
			mod(k)
		}
		return k
	}
	type F = []latchkey.Finding
	tests := []struct {
		name  string
		k     *latchkey.AccessKey
		st    *latchkey.KeyState
		now   time.Time
		want  F
		check func(t *testing.T, ev latchkey.Evaluation)
	}{
		{"new and used", key(nil), nil, day(2), F{}, nil},
		{"just before unused", key(nil), nil, day(10.99), F{}, nil},
		{"unused at 10 days after last use", key(nil), nil, day(11), F{latchkey.FindingUnused}, func(t *testing.T, ev latchkey.Evaluation) {
			if !ev.UnusedSince.Equal(day(1)) || ev.DeactivateAt == nil || !ev.DeactivateAt.Equal(day(21)) {
				t.Errorf("unused since %v, deactivate at %v", ev.UnusedSince, ev.DeactivateAt)
			}
		}},
		{"never used counts from creation", key(func(k *latchkey.AccessKey) { k.LastUsed = nil }), nil, day(10), F{latchkey.FindingUnused}, nil},
		{"reactivation restarts the idle clock", key(func(k *latchkey.AccessKey) { k.LastUsed = nil }),
			&latchkey.KeyState{StatusSince: ptr(day(8))}, day(17.9), F{}, nil},
		{"just before rotation soon", key(func(k *latchkey.AccessKey) { k.LastUsed = &latchkey.Use{At: day(22)} }), nil, day(22.99), F{}, nil},
		{"rotation soon at 23 days", key(func(k *latchkey.AccessKey) { k.LastUsed = &latchkey.Use{At: day(22)} }), nil, day(23),
			F{latchkey.FindingRotationSoon}, func(t *testing.T, ev latchkey.Evaluation) {
				if ev.RotationDueAt == nil || !ev.RotationDueAt.Equal(day(30)) {
					t.Errorf("rotation due at %v", ev.RotationDueAt)
				}
			}},
		{"rotation due at 30 days", key(func(k *latchkey.AccessKey) { k.LastUsed = &latchkey.Use{At: day(29)} }), nil, day(30),
			F{latchkey.FindingRotationDue}, nil},
		{"unrestricted", key(func(k *latchkey.AccessKey) { k.Restrictions = nil }), nil, day(2), F{latchkey.FindingUnrestricted}, nil},
		{"restricted by its application", key(func(k *latchkey.AccessKey) { k.Restrictions, k.AppRestrictions = nil, restricted }), nil, day(2), F{}, nil},
		{"a principal key is never unrestricted nor acted on", key(func(k *latchkey.AccessKey) {
			k.Application, k.Principal, k.Restrictions, k.LastUsed = "", "admin", nil, nil
		}), nil, day(40), F{latchkey.FindingRotationDue, latchkey.FindingUnused}, func(t *testing.T, ev latchkey.Evaluation) {
			if ev.DeactivateAt != nil {
				t.Errorf("deactivate at %v for a principal key", ev.DeactivateAt)
			}
		}},
		{"exposed", key(func(k *latchkey.AccessKey) { k.Exposed = &latchkey.Exposure{At: day(1)} }), nil, day(2), F{latchkey.FindingExposed}, nil},
		{"expiring soon", key(func(k *latchkey.AccessKey) { k.ExpiresAt = ptr(day(9)) }), nil, day(2), F{latchkey.FindingExpiringSoon}, nil},
		{"not expiring soon yet", key(func(k *latchkey.AccessKey) { k.ExpiresAt = ptr(day(9)) }), nil, day(1.99), F{}, nil},
		{"expired", key(func(k *latchkey.AccessKey) { k.ExpiresAt = ptr(day(9)) }), nil, day(9), F{latchkey.FindingExpired}, nil},
		{"Inactive: no rotation or unused finding, deletion scheduled", key(func(k *latchkey.AccessKey) { k.Status = latchkey.StatusInactive }),
			&latchkey.KeyState{StatusSince: ptr(day(12))}, day(40), F{}, func(t *testing.T, ev latchkey.Evaluation) {
				if ev.DeleteAt == nil || !ev.DeleteAt.Equal(day(17)) || ev.DeactivateAt != nil || ev.RotationDueAt != nil {
					t.Errorf("delete at %v, deactivate at %v, rotation due %v", ev.DeleteAt, ev.DeactivateAt, ev.RotationDueAt)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := p.Evaluate(tt.k, tt.st, tt.now)
			if diff := cmp.Diff(tt.want, ev.Findings); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}

	off := latchkey.Policy{}
	if ev := off.Evaluate(key(func(k *latchkey.AccessKey) { k.LastUsed = nil }), nil, day(1000)); len(ev.Findings) != 0 || ev.RotationDueAt != nil {
		t.Errorf("a policy with every rule off found %v", ev.Findings)
	}
}

func ptr[T any](v T) *T { return &v }

// FuzzParseDuration: any string parses to a period within bounds (or off)
// that prints back to itself, or fails with EINVALID.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90d", "0.5d", "36h", "1h30m", "off", "0", "3651d", "-1d", "1e9d", "NaNd", "Infd", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := latchkey.ParseDuration("p", s)
		if err != nil {
			if latchkey.ErrorCode(err) != latchkey.EINVALID {
				t.Fatalf("ParseDuration(%q): code %s", s, latchkey.ErrorCode(err))
			}
			return
		}
		if d < 0 || d.D() > latchkey.MaxPolicyDuration || (d > 0 && d.D() < time.Second) {
			t.Fatalf("ParseDuration(%q) = %v, out of bounds", s, d.D())
		}
		back, err := latchkey.ParseDuration("p", d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, prints %q, which parses to %v, %v", s, d.D(), d, back.D(), err)
		}
	})
}
