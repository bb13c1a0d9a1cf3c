package verify_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// TestRecorderMaxBatch: a flush writes at most MaxBatch keys, the oldest
// first; the others keep counting and go in later flushes, and Stop writes
// everything.
func TestRecorderMaxBatch(t *testing.T) {
	var keys []testKey
	for i := range 7 {
		keys = append(keys, newKey(t, "acme", fmt.Sprintf("app-%d", i)))
	}
	r := newRig(t, keys...)
	r.rec.MaxBatch = 3
	for _, k := range keys {
		r.call(t, k, t0, "192.0.2.1", "ua", latchkey.CodeValid)
	}
	if err := r.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := r.sink.take()
	if len(b) != 1 || len(b[0]) != 3 {
		t.Fatalf("first flush wrote %v, want one batch of 3 keys", b)
	}
	for i, u := range b[0] {
		if u.AccessKeyID != keys[i].ID || u.Uses != 1 {
			t.Errorf("batch[%d] = %s with %d uses, want %s with 1", i, u.AccessKeyID, u.Uses, keys[i].ID)
		}
	}
	// A key still pending keeps counting.
	r.call(t, keys[6], t0.Add(time.Second), "192.0.2.1", "ua", latchkey.CodeValid)
	if err := r.rec.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	uses := map[string]int64{}
	for _, batch := range r.sink.take() {
		if len(batch) > 3 {
			t.Errorf("a batch of %d keys, want at most 3", len(batch))
		}
		for _, u := range batch {
			uses[u.AccessKeyID] += u.Uses
		}
	}
	if len(uses) != 4 || uses[keys[6].ID] != 2 || uses[keys[3].ID] != 1 {
		t.Errorf("Stop wrote uses %v, want keys 3-6, key 6 with 2 uses", uses)
	}
}
