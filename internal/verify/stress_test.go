package verify_test

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// TestIndexConcurrentReplace: while writers replace, rotate (a new secret
// under the same ID), delete and re-add keys, and add and remove keys that
// fill and empty the shards (so that their tables grow and shrink), readers
// verifying and looking keys up never see a torn entry: every entry they
// get is one version of one key, all its fields from that version, and a
// secret only ever finds its own key. Run it with -race.
func TestIndexConcurrentReplace(t *testing.T) {
	const keys, versions = 64, 2
	ix := verify.NewIndex()
	type key struct {
		id      string
		secrets [versions]string
	}
	ks := make([]key, keys)
	version := func(k *key, v int) *latchkey.AccessKey {
		at := t0.Add(time.Duration(v) * time.Hour)
		ak := &latchkey.AccessKey{ID: k.id, Account: "acct-" + strconv.Itoa(v), Application: k.id + "-app-" + strconv.Itoa(v),
			Status: latchkey.StatusActive, ExpiresAt: &at, SecretDigest: keyformat.Sum(k.secrets[v%versions])}
		if v%3 == 0 {
			// Every third version has rules, so that the rules' side
			// slice changes too.
			ak.Restrictions = &latchkey.Restrictions{Scopes: []string{"v" + strconv.Itoa(v)}}
		}
		return ak
	}
	for i := range ks {
		ks[i].id = fmt.Sprintf("LKIASTRESS%010d", i)
		for v := range ks[i].secrets {
			ks[i].secrets[v] = newSecret(t)
		}
		ix.Put(version(&ks[i], 0))
	}
	// check reports what is wrong with an entry read for key k.
	check := func(k *key, e *verify.Entry) string {
		if e.ID != k.id {
			return "entry of " + e.ID + " for key " + k.id
		}
		v, err := strconv.Atoi(strings.TrimPrefix(e.Account, "acct-"))
		if err != nil {
			return "account " + e.Account
		}
		want := version(k, v)
		if e.Application() != want.Application || e.ExpiresAt != want.ExpiresAt.UnixNano() {
			return fmt.Sprintf("torn entry: account %q, application %q, expiry %d", e.Account, e.Application(), e.ExpiresAt)
		}
		if sc := e.Scopes(); (v%3 == 0) != (sc == "v"+strconv.Itoa(v)) {
			return fmt.Sprintf("torn entry: version %d with scopes %q", v, sc)
		}
		return ""
	}

	var stop atomic.Bool
	var reads, found atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	fail := func(s string) {
		select {
		case errs <- s:
		default:
		}
		stop.Store(true)
	}
	// Writers: one replaces and rotates, one deletes and re-adds, one
	// churns filler keys.
	wg.Add(3)
	go func() {
		defer wg.Done()
		for v := 1; !stop.Load(); v++ {
			ix.Put(version(&ks[(v/2)%keys], v))
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			k := &ks[(i*7)%keys]
			ix.Delete(k.id)
			ix.Put(version(k, i))
		}
	}()
	go func() {
		defer wg.Done()
		var seed int
		for !stop.Load() {
			var ids []string
			for range 3000 {
				seed++
				id := fmt.Sprintf("LKIAFILLER%010d", seed)
				ix.Put(&latchkey.AccessKey{ID: id, Account: "filler", Application: "filler", Status: latchkey.StatusActive,
					SecretDigest: keyformat.Sum(strconv.Itoa(seed))})
				ids = append(ids, id)
			}
			for _, id := range ids {
				ix.Delete(id)
			}
		}
	}()
	// Readers.
	v := verify.New(ix, verify.NewRecorder(&memSink{}, time.Hour, nil))
	v.Now = func() time.Time { return t0 }
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := verify.Request{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "stress"}
			for i := r; !stop.Load(); i++ {
				k := &ks[i%keys]
				req.Secret = k.secrets[(i/keys)%versions]
				res := v.Verify(&req)
				reads.Add(1)
				if res.Entry.Found() {
					found.Add(1)
					if s := check(k, &res.Entry); s != "" {
						fail("Verify: " + s)
					}
				}
				if e := ix.Get(k.id); e != nil {
					if s := check(k, e); s != "" {
						fail("Get: " + s)
					}
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	t.Logf("%d verifications, %d found an entry", reads.Load(), found.Load())
	// Every key is there once more, and the fillers are gone.
	if n := ix.Len(); n != keys {
		t.Errorf("Len = %d after the churn, want %d", n, keys)
	}
}
