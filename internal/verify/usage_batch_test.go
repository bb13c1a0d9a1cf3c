package verify_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// TestRecorderMaxBatch: a flush writes at most MaxBatch keys, in a sweep
// through the pending keys in ID order; the others keep counting and go in
// later flushes, and Stop writes everything. A key used again during a
// sweep waits for the next one.
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
	slices.SortFunc(keys, func(a, b testKey) int { return strings.Compare(a.ID, b.ID) })
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
	// A key still pending keeps counting; a key written already waits
	// for the sweep's end.
	r.call(t, keys[6], t0.Add(time.Second), "192.0.2.1", "ua", latchkey.CodeValid)
	r.call(t, keys[0], t0.Add(time.Second), "192.0.2.1", "ua", latchkey.CodeValid)
	if err := r.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	b = r.sink.take()
	if len(b) != 1 || len(b[0]) != 3 || b[0][0].AccessKeyID != keys[3].ID || b[0][2].AccessKeyID != keys[5].ID {
		t.Fatalf("second flush wrote %v, want keys 3 to 5", b)
	}
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
	if len(uses) != 2 || uses[keys[6].ID] != 2 || uses[keys[0].ID] != 1 {
		t.Errorf("Stop wrote uses %v, want key 6 with 2 uses and key 0 with 1", uses)
	}
}

// TestRecorderTxRows: a flush writes its keys in transactions of at most
// TxRows keys; when one fails, the keys already written stay written and
// only the others are kept for the next flush, so nothing is counted twice.
func TestRecorderTxRows(t *testing.T) {
	var keys []testKey
	for i := range 7 {
		keys = append(keys, newKey(t, "acme", fmt.Sprintf("app-%d", i)))
	}
	tests := []struct {
		name      string
		okFirst   int   // sink calls that succeed before one fails
		fail      int   // failing sink calls
		wantSizes []int // batch sizes of the first flush
		wantErr   bool
		retry     []int // batch sizes of the second flush
	}{
		{name: "all written", wantSizes: []int{3, 3, 1}},
		{name: "second transaction fails", okFirst: 1, fail: 1, wantSizes: []int{3}, wantErr: true, retry: []int{3, 1}},
		{name: "first transaction fails", fail: 1, wantErr: true, retry: []int{3, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, keys...)
			r.rec.TxRows = 3
			r.sink.okFirst, r.sink.fail = tt.okFirst, tt.fail
			for _, k := range keys {
				r.call(t, k, t0, "192.0.2.1", "ua", latchkey.CodeValid)
			}
			err := r.rec.Flush(t.Context())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Flush = %v, want error %v", err, tt.wantErr)
			}
			uses := map[string]int64{}
			check := func(flush string, batches [][]latchkey.UsageUpdate, want []int) {
				var sizes []int
				for _, b := range batches {
					sizes = append(sizes, len(b))
					for _, u := range b {
						uses[u.AccessKeyID] += u.Uses
					}
				}
				if fmt.Sprint(sizes) != fmt.Sprint(want) {
					t.Errorf("%s flush wrote batches of %v keys, want %v", flush, sizes, want)
				}
			}
			check("first", r.sink.take(), tt.wantSizes)
			if err := r.rec.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			check("second", r.sink.take(), tt.retry)
			for _, k := range keys {
				if uses[k.ID] != 1 {
					t.Errorf("key %s written with %d uses in all, want 1", k.ID, uses[k.ID])
				}
			}
		})
	}
}
