package client

import (
	"fmt"
	"testing"
	"time"
)

func TestDecisionCacheBounds(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		max     int
		puts    int
		advance time.Duration // between puts
		want    int
	}{
		{"under the bound", 16, 10, 0, 10},
		{"at the bound", 16, 40, 0, 16},
		{"expired entries go first", 16, 40, time.Second, 16},
		{"a bound of one", 1, 5, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &decisionCache{ttl: 5 * time.Second, max: tt.max, m: map[[32]byte]cached{}}
			now := start
			for i := range tt.puts {
				in := VerifyInput{Key: fmt.Sprint("k", i)}
				c.put(cacheKey(&in), Identity{AccessKeyID: fmt.Sprint(i)}, now)
				if c.len() > tt.max {
					t.Fatalf("after %d puts the cache holds %d, more than %d", i+1, c.len(), tt.max)
				}
				now = now.Add(tt.advance)
			}
			last := VerifyInput{Key: fmt.Sprint("k", tt.puts-1)}
			if _, ok := c.get(cacheKey(&last), now.Add(-tt.advance)); !ok {
				t.Error("the newest decision is not kept")
			}
			if c.len() != tt.want {
				t.Errorf("holds %d, want %d", c.len(), tt.want)
			}
		})
	}

	// When full, expired decisions are dropped before live ones.
	c := &decisionCache{ttl: 5 * time.Second, max: 4, m: map[[32]byte]cached{}}
	for i := range 4 {
		in := VerifyInput{Key: fmt.Sprint("old", i)}
		c.put(cacheKey(&in), Identity{}, start)
	}
	in := VerifyInput{Key: "new"}
	c.put(cacheKey(&in), Identity{}, start.Add(5*time.Second))
	if c.len() != 1 {
		t.Errorf("after the old decisions expired, the cache holds %d, want 1", c.len())
	}
}

// TestCacheKey: the key depends on every input of the decision, and a
// secret never appears in it.
func TestCacheKey(t *testing.T) {
	base := VerifyInput{Key: "lksk_secret", AccessKeyID: "LKIA", IP: "192.0.2.1", Referrer: "https://a/", Scope: "s",
		AndroidPackage: "p", AndroidCert: "c", IOSBundleID: "b", UserAgent: "ua"}
	seen := map[[32]byte]string{cacheKey(&base): "base"}
	for name, change := range map[string]func(*VerifyInput){
		"key":      func(v *VerifyInput) { v.Key = "lksk_other" },
		"id":       func(v *VerifyInput) { v.AccessKeyID = "LKIB" },
		"ip":       func(v *VerifyInput) { v.IP = "192.0.2.2" },
		"referrer": func(v *VerifyInput) { v.Referrer = "https://b/" },
		"scope":    func(v *VerifyInput) { v.Scope = "t" },
		"android":  func(v *VerifyInput) { v.AndroidPackage = "q" },
		"cert":     func(v *VerifyInput) { v.AndroidCert = "d" },
		"ios":      func(v *VerifyInput) { v.IOSBundleID = "e" },
		"shifted":  func(v *VerifyInput) { v.IP, v.Referrer = "192.0.2.1h", "ttps://a/" },
	} {
		in := base
		change(&in)
		k := cacheKey(&in)
		if other, dup := seen[k]; dup {
			t.Errorf("changing %s gives the same key as %s", name, other)
		}
		seen[k] = name
	}
	ua := base
	ua.UserAgent = "other"
	if cacheKey(&ua) != cacheKey(&base) {
		t.Error("the user agent, which decides nothing, changes the key")
	}
}
