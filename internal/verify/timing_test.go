package verify

import (
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// TestVerifyTimingDoesNotDependOnTheKey checks the design property that a
// verification looks the secret up by its digest and never compares secret
// bytes: refusing a wrong secret presented with an existing key's ID takes
// as long as refusing one presented with an unknown ID, and a secret that
// differs from a real one in a single character takes as long as one that
// shares nothing with any key. An implementation that found the key by ID
// and then compared secrets, or stopped at the first differing byte, would
// take longer for the cases that name or resemble a real key.
//
// It is statistical, and made robust on a busy two-core machine: the cases
// are interleaved round after round (so that any slowdown of the machine
// hits all of them alike), each sample times a batch of calls (timer
// resolution is then irrelevant), and the medians of many samples are
// compared with a tolerance of 1.5x, far above the noise seen (under 1.1x
// here, also with -race) and far below what a lookup by ID would add.
func TestVerifyTimingDoesNotDependOnTheKey(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	ix := NewIndex()
	v := New(ix, nil) // no guard: every refusal takes the full path
	var real, realID string
	for i := range 10000 {
		id, err := keyformat.NewID()
		if err != nil {
			t.Fatal(err)
		}
		sec, err := keyformat.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		ix.Put(&latchkey.AccessKey{ID: id, Account: "default", Application: "app", Status: latchkey.StatusActive, SecretDigest: keyformat.Sum(sec)})
		if i == 5000 {
			real, realID = sec, id
		}
	}
	unknownID, _ := keyformat.NewID()
	// A secret that differs from the real one in its last random
	// character only, with a valid checksum: it passes the format check
	// and is refused by the lookup.
	body := []byte(real[len(keyformat.SecretPrefix) : keyformat.SecretLen-6])
	if body[len(body)-1] == '0' {
		body[len(body)-1] = '1'
	} else {
		body[len(body)-1] = '0'
	}
	nearMiss := keyformat.SecretPrefix + string(body) + keyformat.Checksum(string(body))
	if !keyformat.ValidSecret(nearMiss) || nearMiss == real {
		t.Fatal("could not make a near-miss secret")
	}
	fresh := func() string {
		s, err := keyformat.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name string
		req  Request
	}{
		{"wrong secret, existing ID", Request{Secret: fresh(), AccessKeyID: realID}},
		{"wrong secret, unknown ID", Request{Secret: fresh(), AccessKeyID: unknownID}},
		{"one character off a real secret, its ID", Request{Secret: nearMiss, AccessKeyID: realID}},
		{"unrelated secret, no ID", Request{Secret: fresh()}},
		{"wrong secret, existing ID, admin API", Request{Secret: fresh(), AccessKeyID: realID, Principal: true}},
	}
	for _, c := range cases {
		if res := v.Verify(&c.req); res.Code != latchkey.CodeNotFound {
			t.Fatalf("%s: %s, want NOT_FOUND", c.name, res.Code)
		}
	}

	const rounds, batch = 400, 200
	samples := make([][]time.Duration, len(cases))
	for r := range rounds {
		for i := range cases {
			c := &cases[(i+r)%len(cases)] // rotate the order every round
			start := time.Now()
			for range batch {
				v.Verify(&c.req)
			}
			samples[(i+r)%len(cases)] = append(samples[(i+r)%len(cases)], time.Since(start)/batch)
		}
	}
	medians := make([]time.Duration, len(cases))
	for i, s := range samples {
		slices.Sort(s)
		medians[i] = s[len(s)/2]
		t.Logf("%-42s median %v per verification", cases[i].name, medians[i])
	}
	lo, hi := slices.Min(medians), slices.Max(medians)
	ratio := float64(hi) / float64(lo)
	t.Logf("slowest/fastest median: %.2f", ratio)
	if ratio > 1.5 {
		t.Errorf("refusals take %v to %v depending on the key presented (%.2fx): the lookup depends on secret bytes or the ID", lo, hi, ratio)
	}
}
