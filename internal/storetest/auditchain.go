package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/latchkey/latchkey"
)

var auditChainTests = []test{
	{"Links", testAuditChainLinks},
	{"ConcurrentAppendsOneOrder", testAuditChainConcurrent},
	{"Checkpoints", testAuditCheckpoints},
}

// chainEvent is the n-th test event of an account.
func chainEvent(account string, n int) *latchkey.AuditEvent {
	return &latchkey.AuditEvent{Time: at(n), Account: account, Actor: "alice", Action: latchkey.ActionAccessKeyUpdate,
		TargetType: "access_key", Target: fmt.Sprintf("LKIA%016d", n), Application: "billing",
		Before: []byte(`{"status":"Active"}`), After: []byte(fmt.Sprintf(`{"status":"Inactive","n":%d}`, n))}
}

// readChain reads an account's whole chain, its head and checkpoints.
func readChain(t *testing.T, s latchkey.Store, account string) ([]*latchkey.AuditEvent, *latchkey.AuditChainHead, []*latchkey.AuditCheckpoint) {
	t.Helper()
	var (
		evs  []*latchkey.AuditEvent
		head *latchkey.AuditChainHead
		cps  []*latchkey.AuditCheckpoint
	)
	ctx := t.Context()
	err := s.View(ctx, func(tx latchkey.Tx) error {
		for after := int64(0); ; {
			page, err := tx.ListAuditChain(ctx, account, after, 7) // small pages: the paging is tested too
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			evs = append(evs, page...)
			after = page[len(page)-1].Seq
		}
		heads, err := tx.AuditChainHeads(ctx, account)
		if err != nil {
			return err
		}
		if len(heads) == 1 {
			head = heads[0]
		}
		cps, err = tx.ListAuditCheckpoints(ctx, account, 0, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs, head, cps
}

func testAuditChainLinks(t *testing.T, s latchkey.Store) {
	var prev string
	for n := 1; n <= 5; n++ {
		e := appendAudit(t, s, chainEvent("acme", n))
		if e.Seq != int64(n) || e.PrevHash != prev || e.Hash != latchkey.AuditEventHash(e, e.Seq) {
			t.Fatalf("event %d: seq %d prev %q hash %q; want seq %d prev %q and its own hash", n, e.Seq, e.PrevHash, e.Hash, n, prev)
		}
		prev = e.Hash
	}
	appendAudit(t, s, chainEvent("other", 1)) // another account: a chain of its own
	evs, head, _ := readChain(t, s, "acme")
	if len(evs) != 5 || head == nil || head.Seq != 5 || head.Hash != prev {
		t.Fatalf("read %d events, head %+v; want 5 and seq 5 with the last hash", len(evs), head)
	}
	if p := latchkey.VerifyAuditChain("acme", evs, nil, head, nil); len(p) != 0 {
		t.Fatalf("untouched chain: %v", p)
	}
	oevs, ohead, _ := readChain(t, s, "other")
	if len(oevs) != 1 || oevs[0].Seq != 1 || ohead.Seq != 1 {
		t.Fatalf("other account: %d events, head %+v; want its own chain from seq 1", len(oevs), ohead)
	}
}

// testAuditChainConcurrent appends from several goroutines at once: the
// chain must come out with every seq once, linked, in one order.
func testAuditChainConcurrent(t *testing.T, s latchkey.Store) {
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := chainEvent("acme", w*each+i)
				if err := s.Update(t.Context(), func(tx latchkey.Tx) error { return tx.AppendAudit(t.Context(), e) }); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("AppendAudit: %v", err)
	}
	evs, head, _ := readChain(t, s, "acme")
	if len(evs) != writers*each || head.Seq != writers*each {
		t.Fatalf("%d events, head seq %d; want %d", len(evs), head.Seq, writers*each)
	}
	if p := latchkey.VerifyAuditChain("acme", evs, nil, head, nil); len(p) != 0 {
		t.Fatalf("chain after concurrent appends: %v", p)
	}
}

func testAuditCheckpoints(t *testing.T, s latchkey.Store) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		appendAudit(t, s, chainEvent("acme", n))
	}
	_, head, _ := readChain(t, s, "acme")
	cp := &latchkey.AuditCheckpoint{Account: "acme", Seq: head.Seq, Hash: head.Hash, Time: at(10)}
	latchkey.SignAuditCheckpoint(cp, key)
	twice := *cp
	twice.Time = at(11)
	latchkey.SignAuditCheckpoint(&twice, key)
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.AddAuditCheckpoint(ctx, cp) })
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.AddAuditCheckpoint(ctx, &twice) })
	evs, head, cps := readChain(t, s, "acme")
	if len(cps) != 1 || *cps[0] != *cp {
		t.Fatalf("checkpoints %+v; want the first one only: %+v", cps, cp)
	}
	if !cps[0].VerifySignature(pub) {
		t.Fatal("stored checkpoint's signature does not verify")
	}
	if p := latchkey.VerifyAuditChain("acme", evs, cps, head, pub); len(p) != 0 {
		t.Fatalf("untouched chain with its checkpoint: %v", p)
	}
}

// checkpointHead signs and stores a checkpoint of the account's head.
func checkpointHead(t *testing.T, s latchkey.Store, key ed25519.PrivateKey, account string) {
	t.Helper()
	_, head, _ := readChain(t, s, account)
	cp := &latchkey.AuditCheckpoint{Account: account, Seq: head.Seq, Hash: head.Hash, Time: at(100)}
	latchkey.SignAuditCheckpoint(cp, key)
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.AddAuditCheckpoint(ctx, cp) })
}

// AuditTamper changes an audit log behind the store's back, with SQL on
// raw (its database handle), the ways someone with write access to the
// database could, and checks that VerifyAuditChain names each change.
// open returns a new, empty store each time.
func AuditTamper(t *testing.T, open func(t *testing.T) latchkey.Store, raw func(latchkey.Store) *sql.DB) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tamper []string // SQL, run in order; {seq} is not templated: literal values only
		want   string   // the first problem named
	}{
		{name: "untouched", want: ""},
		{name: "field updated",
			tamper: []string{`UPDATE audit_events SET actor = 'mallory' WHERE account = 'acme' AND seq = 5`},
			want:   "event seq 5 altered (hash mismatch)"},
		{name: "before JSON updated",
			tamper: []string{`UPDATE audit_events SET before = '{"status":"Inactive"}' WHERE account = 'acme' AND seq = 4`},
			want:   "event seq 4 altered (hash mismatch)"},
		{name: "row deleted",
			tamper: []string{`DELETE FROM audit_events WHERE account = 'acme' AND seq = 6`},
			want:   "event seq 6 missing"},
		{name: "two rows' seq swapped",
			tamper: []string{
				`UPDATE audit_events SET seq = -1 WHERE account = 'acme' AND seq = 7`,
				`UPDATE audit_events SET seq = 7 WHERE account = 'acme' AND seq = 8`,
				`UPDATE audit_events SET seq = 8 WHERE account = 'acme' AND seq = -1`},
			want: "events 7/8 re-ordered"},
		{name: "tail deleted past the head",
			tamper: []string{`DELETE FROM audit_events WHERE account = 'acme' AND seq > 10`},
			want:   "log truncated after seq 10 (chain head at seq 12)"},
		{name: "tail and head rewound past a checkpoint",
			tamper: []string{`DELETE FROM audit_events WHERE account = 'acme' AND seq > 8`,
				`UPDATE audit_chain_heads SET seq = 8, hash = (SELECT hash FROM audit_events WHERE account = 'acme' AND seq = 8) WHERE account = 'acme'`},
			want: "log truncated after seq 8 (signed checkpoint at seq 10)"},
		{name: "checkpoint forged",
			tamper: []string{`UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_events WHERE account = 'acme' AND seq = 9) WHERE account = 'acme' AND seq = 10`},
			want:   "checkpoint seq 10: signature not valid for key " + latchkey.AuditKeyID(pub)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			for n := 1; n <= 12; n++ {
				appendAudit(t, s, chainEvent("acme", n))
				appendAudit(t, s, chainEvent("other", n)) // interleaved, untouched
				if n == 10 {
					checkpointHead(t, s, key, "acme")
				}
			}
			db := raw(s)
			for _, q := range tt.tamper {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			evs, head, cps := readChain(t, s, "acme")
			probs := latchkey.VerifyAuditChain("acme", evs, cps, head, pub)
			got := ""
			if len(probs) > 0 {
				got = probs[0].Message
			}
			if got != tt.want {
				t.Errorf("first problem %q; want %q (all: %v)", got, tt.want, probs)
			}
			oevs, ohead, _ := readChain(t, s, "other")
			if p := latchkey.VerifyAuditChain("other", oevs, nil, ohead, pub); len(p) != 0 {
				t.Errorf("the other account's chain: %v", p)
			}
		})
	}
}

// AuditRewrite is the attack the hashes alone cannot show: an event
// altered and every hash after it recomputed. Before a checkpoint, the
// signed head gives it away; after the last one, nothing does, as
// docs/security.md says.
func AuditRewrite(t *testing.T, open func(t *testing.T) latchkey.Store, raw func(latchkey.Store) *sql.DB) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		seq  int64
		want string
	}{{3, "events seq 1-5 rewritten (seq 5 differs from its signed checkpoint)"}, {7, ""}} {
		t.Run(fmt.Sprint("seq ", tc.seq), func(t *testing.T) {
			s := open(t)
			for n := 1; n <= 8; n++ {
				appendAudit(t, s, chainEvent("acme", n))
				if n == 5 {
					checkpointHead(t, s, key, "acme")
				}
			}
			evs, _, _ := readChain(t, s, "acme")
			db := raw(s)
			prev := evs[tc.seq-2].Hash
			for _, e := range evs[tc.seq-1:] {
				if e.Seq == tc.seq {
					e.Actor = "mallory"
				}
				e.PrevHash = prev
				e.Hash = latchkey.AuditEventHash(e, e.Seq)
				prev = e.Hash
				if _, err := db.ExecContext(t.Context(), fmt.Sprintf(`UPDATE audit_events SET actor = '%s', prev_hash = '%s', hash = '%s' WHERE id = %d`,
					e.Actor, e.PrevHash, e.Hash, e.ID)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.ExecContext(t.Context(), fmt.Sprintf(`UPDATE audit_chain_heads SET hash = '%s' WHERE account = 'acme'`, prev)); err != nil {
				t.Fatal(err)
			}
			evs, head, cps := readChain(t, s, "acme")
			probs := latchkey.VerifyAuditChain("acme", evs, cps, head, pub)
			got := ""
			if len(probs) > 0 {
				got = probs[0].Message
			}
			if got != tc.want {
				t.Errorf("first problem %q; want %q (all: %v)", got, tc.want, probs)
			}
		})
	}
}

// AuditChainBackfill takes a database back to before migration 8 (the
// chain's columns and tables dropped, the migration unrecorded), as a
// database written by an older latchkey is, and opens it again: the
// migration must chain the existing events per account in the order they
// were written, to the same hashes the events had when appended.
// openDB opens the same database each time; raw returns its SQL handle.
func AuditChainBackfill(t *testing.T, openDB func() (latchkey.Store, error), raw func(latchkey.Store) *sql.DB) {
	t.Helper()
	s, err := openDB()
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 9; n++ {
		appendAudit(t, s, chainEvent("acme", n))
		if n%3 == 0 {
			appendAudit(t, s, chainEvent("other", n))
		}
	}
	want, _, _ := readChain(t, s, "acme")
	for _, q := range []string{
		`DROP INDEX audit_events_chain`,
		`DROP TABLE audit_chain_heads`,
		`DROP TABLE audit_checkpoints`,
		`ALTER TABLE audit_events DROP COLUMN seq`,
		`ALTER TABLE audit_events DROP COLUMN prev_hash`,
		`ALTER TABLE audit_events DROP COLUMN hash`,
		`DELETE FROM schema_migrations WHERE version = 8`,
	} {
		if _, err := raw(s).ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	s, err = openDB()
	if err != nil {
		t.Fatalf("opening the database to migrate it again: %v", err)
	}
	defer s.Close()
	got, head, _ := readChain(t, s, "acme")
	if len(got) != len(want) {
		t.Fatalf("%d events after the backfill; want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Seq != want[i].Seq || got[i].Hash != want[i].Hash {
			t.Errorf("event %d after the backfill: id %d seq %d hash %s; want id %d seq %d hash %s",
				i, got[i].ID, got[i].Seq, got[i].Hash, want[i].ID, want[i].Seq, want[i].Hash)
		}
	}
	if p := latchkey.VerifyAuditChain("acme", got, nil, head, nil); len(p) != 0 {
		t.Errorf("backfilled chain: %v", p)
	}
	oevs, ohead, _ := readChain(t, s, "other")
	if len(oevs) != 3 || ohead.Seq != 3 {
		t.Errorf("other account: %d events, head %+v; want 3", len(oevs), ohead)
	}
	// and the chain goes on from where the backfill left it
	e := appendAudit(t, s, chainEvent("acme", 10))
	if e.Seq != 10 || e.PrevHash != head.Hash {
		t.Errorf("first event after the backfill: seq %d prev %s; want 10 and %s", e.Seq, e.PrevHash, head.Hash)
	}
}
