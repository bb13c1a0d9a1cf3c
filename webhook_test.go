package latchkey_test

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// The test vector published with the Standard Webhooks specification
// (github.com/standard-webhooks/standard-webhooks).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignWebhookTestVector(t *testing.T) {
	got, err := latchkey.SignWebhook(vectorSecret, vectorID, vectorTimestamp, []byte(vectorPayload))
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSignature {
		t.Errorf("SignWebhook = %q, want the specification's %q", got, vectorSignature)
	}
}

func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(vectorTimestamp, 0)
	ts := strconv.Itoa(vectorTimestamp)
	other, err := latchkey.NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		secret    string
		id, ts    string
		sigs      string
		body      string
		now       time.Time
		wantError string
	}{
		{"the vector", vectorSecret, vectorID, ts, vectorSignature, vectorPayload, now, ""},
		{"among several signatures", vectorSecret, vectorID, ts, "v1,bm9wZQ== " + vectorSignature, vectorPayload, now, ""},
		{"4 minutes late", vectorSecret, vectorID, ts, vectorSignature, vectorPayload, now.Add(4 * time.Minute), ""},
		{"6 minutes late", vectorSecret, vectorID, ts, vectorSignature, vectorPayload, now.Add(6 * time.Minute), latchkey.EINVALID},
		{"from the future", vectorSecret, vectorID, ts, vectorSignature, vectorPayload, now.Add(-6 * time.Minute), latchkey.EINVALID},
		{"body changed", vectorSecret, vectorID, ts, vectorSignature, `{"test": 2432232315}`, now, latchkey.EUNAUTHORIZED},
		{"id changed", vectorSecret, "msg_other", ts, vectorSignature, vectorPayload, now, latchkey.EUNAUTHORIZED},
		{"another secret", other, vectorID, ts, vectorSignature, vectorPayload, now, latchkey.EUNAUTHORIZED},
		// Same bytes as the vector once decoded leniently (the last
		// character's two padding bits differ): found by FuzzVerifyWebhook.
		{"non-canonical base64", vectorSecret, vectorID, ts, strings.TrimSuffix(vectorSignature, "E=") + "G=", vectorPayload, now, latchkey.EUNAUTHORIZED},
		{"another version", vectorSecret, vectorID, ts, strings.Replace(vectorSignature, "v1,", "v2,", 1), vectorPayload, now, latchkey.EUNAUTHORIZED},
		{"timestamp not a number", vectorSecret, vectorID, "yesterday", vectorSignature, vectorPayload, now, latchkey.EINVALID},
		{"secret not base64", "whsec_!!!", vectorID, ts, vectorSignature, vectorPayload, now, latchkey.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := latchkey.VerifyWebhook(tt.secret, tt.id, tt.ts, tt.sigs, []byte(tt.body), tt.now)
			if got := latchkey.ErrorCode(err); got != tt.wantError {
				t.Errorf("VerifyWebhook: code %q, want %q (%v)", got, tt.wantError, err)
			}
		})
	}
}

func TestNewWebhookSecret(t *testing.T) {
	a, err := latchkey.NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := latchkey.NewWebhookSecret()
	if a == b {
		t.Error("two secrets are equal")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(key) != 32 {
		t.Errorf("secret %q is not whsec_ and the base64 of 32 bytes", a[:6])
	}
	sig, err := latchkey.SignWebhook(a, "msg_1", 1, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if err := latchkey.VerifyWebhook(a, "msg_1", "1", sig, []byte("{}"), time.Unix(1, 0)); err != nil {
		t.Errorf("a fresh secret's signature does not verify: %v", err)
	}
}

func TestValidateWebhookURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://hooks.example.com/latchkey", true},
		{"http://127.0.0.1:9000/hook?team=ops", true},
		{"ftp://hooks.example.com/", false},
		{"hooks.example.com/latchkey", false},
		{"https://", false},
		{"https://user:pass@hooks.example.com/", false},
		{"https://user@hooks.example.com/", false},
		{"https://hooks.example.com/?key=lksk_" + strings.Repeat("a", 46), false},
		{"https://hooks.example.com/#frag", false},
		{"javascript:alert(1)", false},
		{"https://hooks.example.com/" + strings.Repeat("a", 2048), false},
		{"https://hooks.example.com./latchkey", true},
		{"https://[2001:db8::10]:8443/hook", true},
		{"https://1e100.net/", true},
		{"http://:80/", false},
		{"http://[fe80::1%25eth0]/", false},
		// Numeric shorthands that inet_aton (and so a cgo resolver) reads
		// as 127.0.0.1.
		{"http://127.1/", false},
		{"http://2130706433/", false},
		{"http://0x7f000001/", false},
		{"http://0x7f.0.0.1/", false},
		{"http://017700000001/", false},
		{"http://127.0.0.01/", false},
		{"http://hooks.0x/", false},
	}
	for _, tt := range tests {
		err := latchkey.ValidateWebhookURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateWebhookURL(%.40q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("ValidateWebhookURL(%.40q): code %s", tt.url, latchkey.ErrorCode(err))
		}
	}
}

func TestWebhookWants(t *testing.T) {
	w := &latchkey.Webhook{Enabled: true, Events: []string{latchkey.EventKeyUnused}}
	if !w.Wants(latchkey.EventKeyUnused) || w.Wants(latchkey.EventKeyCreated) || !w.Wants(latchkey.EventWebhookPing) {
		t.Error("subscription to key.unused")
	}
	w.Events = nil
	if !w.Wants(latchkey.EventKeyCreated) {
		t.Error("no subscription list means every event")
	}
	w.Enabled = false
	if w.Wants(latchkey.EventKeyCreated) || w.Wants(latchkey.EventWebhookPing) {
		t.Error("a disabled webhook wants nothing")
	}
	if err := latchkey.ValidateEventTypes([]string{"key.created", "key.nope"}); latchkey.ErrorCode(err) != latchkey.EINVALID {
		t.Errorf("ValidateEventTypes accepted an unknown type: %v", err)
	}
}

// FuzzVerifyWebhook: whatever a sender puts in the headers and body,
// verification neither panics nor accepts a signature it did not make.
func FuzzVerifyWebhook(f *testing.F) {
	f.Add(vectorID, strconv.Itoa(vectorTimestamp), vectorSignature, vectorPayload)
	f.Add("", "", "v1,", "")
	f.Add("msg", "1614265330", "v1,!!! v2,abc v1", "{}")
	f.Fuzz(func(t *testing.T, id, ts, sigs, body string) {
		err := latchkey.VerifyWebhook(vectorSecret, id, ts, sigs, []byte(body), time.Unix(vectorTimestamp, 0))
		if err == nil {
			n, _ := strconv.ParseInt(ts, 10, 64)
			want, _ := latchkey.SignWebhook(vectorSecret, id, n, []byte(body))
			if !strings.Contains(sigs, strings.TrimPrefix(want, "v1,")) {
				t.Fatalf("accepted signatures %q for a message whose signature is %q", sigs, want)
			}
		}
	})
}
