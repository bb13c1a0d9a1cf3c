package verify

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// fakeRates is a RateStore that records its calls and answers what it is
// told.
type fakeRates struct {
	mu    sync.Mutex
	calls []string
	cfgs  []latchkey.RateLimit
	ok    bool
	info  RateInfo
	err   error
}

func (f *fakeRates) Allow(key string, cfg latchkey.RateLimit) (bool, RateInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, key)
	f.cfgs = append(f.cfgs, cfg)
	return f.ok, f.info, f.err
}

func TestSharedRateStore(t *testing.T) {
	f := newFixture(t)
	rates := &fakeRates{ok: true, info: RateInfo{Limit: 7, Window: time.Second, Remaining: 6}}
	f.v.Rates = rates
	cfg := latchkey.RateLimit{PerSecond: 1, Burst: 1}
	limited := f.add(nil, &latchkey.Restrictions{RateLimit: &cfg}, nil)
	free := f.add(nil, nil, nil)
	id := f.v.Find(limited).ID

	// The store decides, every time: the local bucket (burst 1) would
	// have refused the second call.
	for i := range 3 {
		res := f.v.Verify(&Request{Secret: limited})
		if res.Code != latchkey.CodeValid || res.Rate != rates.info {
			t.Fatalf("call %d: %+v", i, res)
		}
	}
	rates.ok, rates.info = false, RateInfo{Limit: 7, Window: time.Second, RetryAfter: 300 * time.Millisecond}
	if res := f.v.Verify(&Request{Secret: limited}); res.Code != latchkey.CodeRateLimited || res.Rate.RetryAfter != 300*time.Millisecond {
		t.Fatalf("refused by the store: %+v", res)
	}
	if len(rates.calls) != 4 || rates.calls[0] != id || rates.cfgs[0] != cfg {
		t.Fatalf("store calls %v %v, want 4 for %s with %+v", rates.calls, rates.cfgs, id, cfg)
	}
	// A key without a rate limit never reaches the store.
	if res := f.v.Verify(&Request{Secret: free}); res.Code != latchkey.CodeValid || res.Rate.Limit != 0 {
		t.Fatalf("free key: %+v", res)
	}
	if len(rates.calls) != 4 {
		t.Errorf("a key without a rate limit asked the store")
	}
	// A refused call is refused before the rate limit: no store call.
	ipOnly := f.add(nil, &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}, RateLimit: &cfg}, nil)
	if res := f.v.Verify(&Request{Secret: ipOnly, IP: netip.MustParseAddr("198.51.100.1")}); res.Code != latchkey.CodeIPNotAllowed {
		t.Fatalf("wrong IP: %+v", res)
	}
	if len(rates.calls) != 4 {
		t.Errorf("a call refused by its IP restriction asked the store")
	}
}

func TestSharedRateStoreReportOnly(t *testing.T) {
	f := newFixture(t)
	rates := &fakeRates{ok: false}
	f.v.Rates = rates
	sec := f.add(nil, nil, &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerMinute: 5}})
	res := f.v.Verify(&Request{Secret: sec})
	if res.Code != latchkey.CodeValid || res.WouldDeny != latchkey.CodeRateLimited {
		t.Fatalf("report-only limit refused by the store: %+v", res)
	}
	if want := f.v.Find(sec).ID + "/report-only"; len(rates.calls) != 1 || rates.calls[0] != want {
		t.Errorf("store calls %v, want [%s]", rates.calls, want)
	}
}

func TestSharedRateStoreFailure(t *testing.T) {
	cfg := latchkey.RateLimit{PerSecond: 1, Burst: 2}
	tests := []struct {
		name   string
		policy RateStoreFailure
		want   []latchkey.Code // three calls at one instant
	}{
		{"fall back to this replica's limit", RateFallbackLocal, []latchkey.Code{latchkey.CodeValid, latchkey.CodeValid, latchkey.CodeRateLimited}},
		{"fail open", RateFailOpen, []latchkey.Code{latchkey.CodeValid, latchkey.CodeValid, latchkey.CodeValid}},
		{"fail closed", RateFailClosed, []latchkey.Code{latchkey.CodeRateLimited, latchkey.CodeRateLimited, latchkey.CodeRateLimited}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.v.Rates = &fakeRates{err: errors.New("redis: connection refused")}
			f.v.OnRateStoreError = tt.policy
			sec := f.add(nil, &latchkey.Restrictions{RateLimit: &cfg}, nil)
			for i, want := range tt.want {
				res := f.v.Verify(&Request{Secret: sec})
				if res.Code != want {
					t.Errorf("call %d: %s, want %s", i, res.Code, want)
				}
				if res.Code == latchkey.CodeRateLimited && (res.Rate.RetryAfter <= 0 || res.Rate.Limit != 2) {
					t.Errorf("call %d: refused without a limit or a retry time: %+v", i, res.Rate)
				}
			}
		})
	}
}

// TestSharedRateStoreFailureAfterGrants: when the store fails after
// granting calls through this replica, the fallback to this replica's
// buckets does not start from full buckets: the calls the store allowed
// were charged to them. Calls the store refused, and the fail-open and
// fail-closed policies, charge nothing.
func TestSharedRateStoreFailureAfterGrants(t *testing.T) {
	cfg := latchkey.RateLimit{PerMinute: 5}
	tests := []struct {
		name      string
		storeOK   bool // what the store answers before it fails
		before    int  // calls answered by the store
		policy    RateStoreFailure
		wantAfter int // of 5 calls after the failure, how many are allowed
	}{
		{"granted 3 of 5, then local", true, 3, RateFallbackLocal, 2},
		{"granted 5 of 5, then local", true, 5, RateFallbackLocal, 0},
		{"granted 9 (a burst larger than this replica's), then local", true, 9, RateFallbackLocal, 0},
		{"refused 4, then local", false, 4, RateFallbackLocal, 5},
		{"no calls, then local", true, 0, RateFallbackLocal, 5},
		{"granted 5, then open", true, 5, RateFailOpen, 5},
		{"granted 5, then closed", true, 5, RateFailClosed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rates := &fakeRates{ok: tt.storeOK}
			f.v.Rates = rates
			f.v.OnRateStoreError = tt.policy
			sec := f.add(nil, &latchkey.Restrictions{RateLimit: &cfg}, nil)
			want := latchkey.CodeValid
			if !tt.storeOK {
				want = latchkey.CodeRateLimited
			}
			for i := range tt.before {
				if c := f.v.Verify(&Request{Secret: sec}).Code; c != want {
					t.Fatalf("store call %d: %s, want %s", i, c, want)
				}
			}
			rates.mu.Lock()
			rates.err = errors.New("redis: i/o timeout")
			rates.mu.Unlock()
			allowed := 0
			for range 5 {
				if f.v.Verify(&Request{Secret: sec}).Code == latchkey.CodeValid {
					allowed++
				}
			}
			if allowed != tt.wantAfter {
				t.Errorf("%d of 5 calls allowed after the store failed, want %d", allowed, tt.wantAfter)
			}
		})
	}
}

// TestSharedRateStoreDoesNotAllocate: with a shared store configured, a
// key without a rate limit still verifies without allocating.
func TestSharedRateStoreDoesNotAllocate(t *testing.T) {
	f := newFixture(t)
	f.v.Rates = &fakeRates{ok: true}
	sec := f.add(nil, &latchkey.Restrictions{AllowedIPs: []string{"203.0.113.0/24"}}, nil)
	req := &Request{Secret: sec, IP: netip.MustParseAddr("203.0.113.7")}
	if c := f.v.Verify(req).Code; c != latchkey.CodeValid {
		t.Fatalf("code %s", c)
	}
	if n := testing.AllocsPerRun(200, func() { f.v.Verify(req) }); n != 0 {
		t.Errorf("Verify allocates %v times with a shared rate store and no rate limit", n)
	}
}
