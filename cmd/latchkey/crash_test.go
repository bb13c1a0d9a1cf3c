package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/sqlite"
)

// The crash test runs `latchkey serve` as a real process, drives
// concurrent management writes and verifications at it, kills it with
// SIGKILL at a random moment, restarts it and checks the database:
//
//   - every acknowledged write (2xx) is there, and every refused one
//     (4xx/5xx) is not;
//   - a write whose outcome the client could not know (the connection
//     died) is either wholly applied, with its audit event, or not at all;
//   - the audit log is exactly the history of the keys: per key, a create
//     event, one event per change in the order the changes were made, a
//     delete event for a deleted key; every key in the database has its
//     create event and every created key is in the database or deleted;
//   - after the restart the verification index holds exactly the keys of
//     the database, with their status (compared digest by digest through
//     /v1/leaks/check, which reads the index only), and every secret the
//     client holds verifies as its key's state says.
//
// Rounds per store: LATCHKEY_CRASH_ROUNDS (default 20; 5 with -short).

const crashWriters, crashVerifiers, crashMaxLiveKeys = 4, 2, 5

func crashRounds(t *testing.T) int {
	if v := os.Getenv("LATCHKEY_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LATCHKEY_CRASH_ROUNDS=%q: expected a positive number", v)
		}
		return n
	}
	if testing.Short() {
		return 5
	}
	return 20
}

func TestCrashSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	runCrash(t, "sqlite:"+path, func(ctx context.Context) (latchkey.Store, error) { return sqlite.Open(ctx, path) })
}

func TestCrashPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	name := strings.TrimPrefix(url[strings.LastIndex(url, "/"):strings.Index(url+"?", "?")], "/")
	runCrash(t, url, func(ctx context.Context) (latchkey.Store, error) {
		// The killed process's sessions outlive it for a moment: one that
		// had sent COMMIT still commits. Its write's outcome is settled
		// only once the session is gone, so wait for that before reading.
		conn := pgtest.Connect(t)
		defer conn.Close(context.Background())
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, name).Scan(&n); err != nil {
				return nil, err
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%d sessions of the killed server still open after 10s", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return postgres.Open(ctx, url)
	})
}

// keyState is what the test tracks of a key: what its audit events record.
type keyState struct {
	Status string `json:"status"`
	Desc   string `json:"description"`
}

// pendingOp is a write whose outcome is unknown.
type pendingOp struct {
	kind  string   // "update" or "delete"
	state keyState // the state an update would give
}

// modelKey is the client's knowledge of one key.
type modelKey struct {
	id, secret, app string // secret is "" for a key whose create was not acknowledged
	history         []keyState
	deleted         bool
	pending         *pendingOp
	busy            bool // a write is in flight: verifiers do not judge it
	ver             int
}

func (k *modelKey) state() keyState { return k.history[len(k.history)-1] }

type crashModel struct {
	mu   sync.Mutex
	keys map[string]*modelKey
	// pendingCreates are creates whose outcome is unknown, by their
	// unique description.
	pendingCreates map[string]string // description -> application
	refusedCreates []string          // descriptions of creates the server refused
	seq            int
	// dbIndex is every key the database held after the last crash, by
	// secret digest in hex: what the next server's index must hold.
	dbIndex map[string]indexEntry

	acked, refused, unknown, verified, judged atomic.Int64
	recovered                                 int // unknown writes found applied
	indexChecked                              int // index entries compared with the database
}

func (m *crashModel) nextDesc(prefix string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	return fmt.Sprintf("%s-%d", prefix, m.seq)
}

// indexEntry is what /v1/leaks/check answers for a digest: it reads the
// verification index, never the database.
type indexEntry struct {
	ID     string `json:"access_key_id"`
	Status string `json:"status"`
}

// outcome of one HTTP call.
type outcome int

const (
	acked outcome = iota
	refused
	unknown
)

type crashClient struct {
	hc       *http.Client
	endpoint string
	auth     string
}

func (c *crashClient) call(ctx context.Context, method, path string, body any, out any) (outcome, int) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, rd)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", c.auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return unknown, 0
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return unknown, res.StatusCode // the answer was cut off
	}
	if res.StatusCode >= 300 {
		return refused, res.StatusCode
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return unknown, res.StatusCode
		}
	}
	return acked, res.StatusCode
}

func runCrash(t *testing.T, dbURL string, open func(context.Context) (latchkey.Store, error)) {
	home := t.TempDir()
	args := []string{"--database-url", dbURL, "--max-keys-per-application", "100", "--guard-failures", "0",
		"--usage-flush-interval", "50ms", "--log-level", "warn"}
	srv := startServer(t, home, args...)
	f, err := credfile.Read(filepath.Join(home, ".latchkey", "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.Profile("default")[credfile.KeySecretAccessKey]
	m := &crashModel{keys: map[string]*modelKey{}, pendingCreates: map[string]string{}}
	setup := &crashClient{hc: &http.Client{Timeout: 10 * time.Second}, endpoint: srv.endpoint, auth: auth}
	for w := range crashWriters {
		if o, st := setup.call(t.Context(), "POST", "/v1/applications", map[string]string{"name": fmt.Sprintf("w%d", w)}, nil); o != acked {
			t.Fatalf("creating application w%d: status %d", w, st)
		}
	}
	srv.stop()

	rounds := crashRounds(t)
	start := time.Now()
	for round := range rounds {
		srv := startServer(t, home, args...)
		if strings.Contains(srv.stdout.String(), "First start") {
			t.Fatalf("round %d: the server bootstrapped again", round)
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		c := &crashClient{hc: hc, endpoint: srv.endpoint, auth: auth}
		m.checkIndex(t, c, round)

		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for w := range crashWriters {
			wg.Go(func() { m.writer(ctx, c, fmt.Sprintf("w%d", w), rand.New(rand.NewPCG(uint64(round), uint64(w)))) })
		}
		for v := range crashVerifiers {
			wg.Go(func() { m.verifier(ctx, t, c, rand.New(rand.NewPCG(uint64(round), uint64(100+v)))) })
		}
		time.Sleep(time.Duration(50+rand.IntN(451)) * time.Millisecond)
		if err := srv.cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		<-srv.exited
		cancel()
		wg.Wait()
		hc.CloseIdleConnections()
		m.checkStore(t, open, round)
	}
	// One last start: the index of the last crash's database, then a
	// clean stop.
	srv = startServer(t, home, args...)
	m.checkIndex(t, &crashClient{hc: &http.Client{Timeout: 10 * time.Second}, endpoint: srv.endpoint, auth: auth}, rounds)
	srv.stop()
	t.Logf("%d crash rounds survived in %s: %d acknowledged writes (each checked after every later crash), %d refused, "+
		"%d with unknown outcome (%d of them found applied, all whole), %d verifications (%d judged against the model), "+
		"%d index entries compared with the database after restarts",
		rounds, time.Since(start).Round(time.Second), m.acked.Load(), m.refused.Load(), m.unknown.Load(), m.recovered,
		m.verified.Load(), m.judged.Load(), m.indexChecked)
}

// writer makes random writes to its application's keys until one fails to
// get an answer (the server is gone), or ctx ends.
func (m *crashModel) writer(ctx context.Context, c *crashClient, app string, rng *rand.Rand) {
	for ctx.Err() == nil {
		m.mu.Lock()
		var live []*modelKey
		for _, k := range m.keys {
			if k.app == app && !k.deleted {
				live = append(live, k)
			}
		}
		m.mu.Unlock()
		slices.SortFunc(live, func(a, b *modelKey) int { return strings.Compare(a.id, b.id) })
		op := rng.IntN(10)
		if len(live) == 0 || (op < 3 && len(live) < crashMaxLiveKeys) {
			if !m.create(ctx, c, app) {
				return
			}
			continue
		}
		k := live[rng.IntN(len(live))]
		var ok bool
		switch {
		case op < 6:
			st := keyState{Status: "Inactive", Desc: k.state().Desc}
			if k.state().Status == "Inactive" {
				st.Status = "Active"
			}
			ok = m.update(ctx, c, k, map[string]string{"status": st.Status}, st)
		case op < 8:
			d := m.nextDesc("d")
			ok = m.update(ctx, c, k, map[string]string{"description": d}, keyState{Status: k.state().Status, Desc: d})
		default:
			ok = m.remove(ctx, c, k)
		}
		if !ok {
			return
		}
	}
}

func (m *crashModel) create(ctx context.Context, c *crashClient, app string) bool {
	d := m.nextDesc("c")
	m.mu.Lock()
	m.pendingCreates[d] = app
	m.mu.Unlock()
	var out struct {
		ID     string `json:"access_key_id"`
		Secret string `json:"secret_access_key"`
	}
	o, _ := c.call(ctx, "POST", "/v1/applications/"+app+"/access-keys", map[string]string{"description": d}, &out)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch o {
	case acked:
		delete(m.pendingCreates, d)
		m.keys[out.ID] = &modelKey{id: out.ID, secret: out.Secret, app: app, history: []keyState{{"Active", d}}}
		m.acked.Add(1)
	case refused:
		delete(m.pendingCreates, d) // must not be in the database
		m.refusedCreates = append(m.refusedCreates, d)
		m.refused.Add(1)
	default:
		m.unknown.Add(1)
		return false
	}
	return true
}

func (m *crashModel) update(ctx context.Context, c *crashClient, k *modelKey, body map[string]string, to keyState) bool {
	m.mu.Lock()
	k.busy, k.pending = true, &pendingOp{kind: "update", state: to}
	m.mu.Unlock()
	o, _ := c.call(ctx, "PATCH", "/v1/access-keys/"+k.id, body, nil)
	return m.settle(k, o, func() { k.history = append(k.history, to) })
}

func (m *crashModel) remove(ctx context.Context, c *crashClient, k *modelKey) bool {
	m.mu.Lock()
	k.busy, k.pending = true, &pendingOp{kind: "delete"}
	m.mu.Unlock()
	o, _ := c.call(ctx, "DELETE", "/v1/access-keys/"+k.id+"?force=true", nil, nil)
	return m.settle(k, o, func() { k.deleted = true })
}

// settle records the outcome of a write to k; apply makes an acknowledged
// write part of the model.
func (m *crashModel) settle(k *modelKey, o outcome, apply func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	k.busy = false
	k.ver++
	switch o {
	case acked:
		k.pending = nil
		apply()
		m.acked.Add(1)
	case refused:
		k.pending = nil
		m.refused.Add(1)
	default:
		m.unknown.Add(1) // k.pending stays, to be resolved against the database
		return false
	}
	return true
}

// verifier verifies random known secrets, and checks each answer against
// the model when no write to that key was in flight meanwhile: an
// acknowledged delete or deactivation holds at once.
func (m *crashModel) verifier(ctx context.Context, t *testing.T, c *crashClient, rng *rand.Rand) {
	for ctx.Err() == nil {
		// Paced, so that the writes get the CPU: the overload test is
		// where verification runs flat out.
		time.Sleep(2 * time.Millisecond)
		m.mu.Lock()
		var cands []*modelKey
		for _, k := range m.keys {
			if k.secret != "" {
				cands = append(cands, k)
			}
		}
		slices.SortFunc(cands, func(a, b *modelKey) int { return strings.Compare(a.id, b.id) })
		var k *modelKey
		var before keyState
		var deleted, busy bool
		var ver int
		if len(cands) > 0 {
			k = cands[rng.IntN(len(cands))]
			before, deleted, busy, ver = k.state(), k.deleted, k.busy || k.pending != nil, k.ver
		}
		m.mu.Unlock()
		if k == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		var res struct {
			Code string `json:"code"`
		}
		o, st := c.call(ctx, "POST", "/v1/verify", map[string]string{"key": k.secret}, &res)
		if o == unknown {
			return
		}
		if o != acked {
			t.Errorf("verify of %s: status %d", k.id, st)
			return
		}
		m.verified.Add(1)
		m.mu.Lock()
		stable := !busy && !k.busy && k.pending == nil && k.ver == ver
		m.mu.Unlock()
		if !stable {
			continue
		}
		m.judged.Add(1)
		if want := wantCode(before, deleted); res.Code != want {
			t.Errorf("verify of %s (%s, deleted %v): %s, want %s", k.id, before.Status, deleted, res.Code, want)
		}
	}
}

func wantCode(s keyState, deleted bool) string {
	switch {
	case deleted:
		return "NOT_FOUND"
	case s.Status == "Inactive":
		return "INACTIVE"
	}
	return "VALID"
}

// checkIndex compares a freshly started server's verification index with
// the database the last crash left: every key there, by its digest
// (/v1/leaks/check reads the index only), including keys whose secret the
// client never learnt; and every secret the client holds, verified.
func (m *crashModel) checkIndex(t *testing.T, c *crashClient, round int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	digests := make([]string, 0, len(m.dbIndex))
	for d := range m.dbIndex {
		digests = append(digests, d)
	}
	for _, k := range m.keys {
		if k.deleted && k.secret != "" {
			digests = append(digests, digestOf(k.secret)) // must be unknown
		}
	}
	for len(digests) > 0 {
		chunk := digests[:min(len(digests), 1000)]
		digests = digests[len(chunk):]
		var res struct {
			Results []struct {
				Digest string `json:"digest"`
				indexEntry
			} `json:"results"`
		}
		if o, st := c.call(t.Context(), "POST", "/v1/leaks/check", map[string][]string{"digests": chunk}, &res); o != acked || len(res.Results) != len(chunk) {
			t.Fatalf("round %d: checking the index: status %d, %d results for %d digests", round, st, len(res.Results), len(chunk))
		}
		for _, r := range res.Results {
			want, ok := m.dbIndex[r.Digest]
			if !ok {
				want = indexEntry{Status: "unknown"}
			}
			if r.indexEntry != want {
				t.Errorf("round %d: after restart the index holds %+v for a digest the database has as %+v", round, r.indexEntry, want)
			}
			m.indexChecked++
		}
	}
	for _, k := range m.keys {
		if k.secret == "" {
			continue
		}
		var res struct {
			Code string `json:"code"`
			ID   string `json:"access_key_id"`
		}
		if o, st := c.call(t.Context(), "POST", "/v1/verify", map[string]string{"key": k.secret}, &res); o != acked {
			t.Fatalf("round %d: verify after restart: status %d", round, st)
		}
		if want := wantCode(k.state(), k.deleted); res.Code != want || (!k.deleted && res.ID != k.id) {
			t.Errorf("round %d: after restart %s verifies as %s (%s), want %s", round, k.id, res.Code, res.ID, want)
		}
	}
}

// auditEntry is an audit event as the check reads it.
type auditEntry struct {
	action string
	after  keyState
}

// checkStore opens the database the killed server left and compares it,
// and its audit log, with the model; writes of unknown outcome are resolved
// here, and must be whole.
func (m *crashModel) checkStore(t *testing.T, open func(context.Context) (latchkey.Store, error), round int) {
	t.Helper()
	ctx := t.Context()
	store, err := open(ctx)
	if err != nil {
		t.Fatalf("round %d: opening the database after the crash: %v", round, err)
	}
	defer store.Close()
	dbKeys := map[string]*latchkey.AccessKey{}
	var events []*latchkey.AuditEvent
	err = store.View(ctx, func(tx latchkey.Tx) error {
		f := latchkey.AccessKeyFilter{Limit: 1000}
		for {
			page, next, err := tx.ListAccessKeys(ctx, f)
			if err != nil {
				return err
			}
			for _, k := range page {
				dbKeys[k.ID] = k
			}
			if next == "" {
				break
			}
			f.After = next
		}
		af := latchkey.AuditFilter{Limit: 1000}
		for {
			page, next, err := tx.ListAuditEvents(ctx, af)
			if err != nil {
				return err
			}
			events = append(events, page...)
			if next == "" {
				break
			}
			af.After = next
		}
		return nil
	})
	if err != nil {
		t.Fatalf("round %d: reading the database: %v", round, err)
	}
	slices.Reverse(events) // oldest first
	audit := map[string][]auditEntry{}
	for _, ev := range events {
		if ev.TargetType != "access_key" {
			continue
		}
		var st keyState
		if len(ev.After) > 0 {
			if err := json.Unmarshal(ev.After, &st); err != nil {
				t.Fatalf("audit event %d: %v", ev.ID, err)
			}
		}
		audit[ev.Target] = append(audit[ev.Target], auditEntry{ev.Action, st})
	}
	// Every key in the database has its create event, and every created
	// key is in the database unless its delete event says otherwise.
	for id := range dbKeys {
		if a := audit[id]; len(a) == 0 || a[0].action != latchkey.ActionAccessKeyCreate {
			t.Errorf("round %d: key %s is in the database without its create event", round, id)
		}
	}
	for id, a := range audit {
		_, inDB := dbKeys[id]
		deleted := a[len(a)-1].action == latchkey.ActionAccessKeyDelete
		if inDB == deleted {
			t.Errorf("round %d: key %s: in the database %v, but its audit log ends with %s", round, id, inDB, a[len(a)-1].action)
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.dbIndex = map[string]indexEntry{}
	for _, k := range dbKeys {
		m.dbIndex[hex.EncodeToString(k.SecretDigest[:])] = indexEntry{ID: k.ID, Status: string(k.Status)}
	}
	// Creates of unknown outcome: found by their unique description.
	byDesc := map[string]*latchkey.AccessKey{}
	for _, k := range dbKeys {
		byDesc[k.Description] = k
	}
	for d, app := range m.pendingCreates {
		if k, ok := byDesc[d]; ok && m.keys[k.ID] == nil {
			m.keys[k.ID] = &modelKey{id: k.ID, app: app, history: []keyState{{"Active", d}}}
			m.recovered++
		}
		delete(m.pendingCreates, d)
	}
	for _, d := range m.refusedCreates {
		if k, ok := byDesc[d]; ok {
			t.Errorf("round %d: a refused create is in the database as %s", round, k.ID)
		}
	}
	m.refusedCreates = nil
	for _, k := range m.keys {
		got := dbKeys[k.id]
		hist := audit[k.id]
		// the audit log of a key: its states, and whether it ends deleted
		var states []keyState
		auditDeleted := false
		for _, e := range hist {
			if e.action == latchkey.ActionAccessKeyDelete {
				auditDeleted = true
				continue
			}
			states = append(states, e.after)
		}
		if p := k.pending; p != nil {
			applied := false
			switch p.kind {
			case "update":
				applied = got != nil && len(states) == len(k.history)+1
				if applied {
					k.history = append(k.history, p.state)
				}
			case "delete":
				applied = got == nil && auditDeleted
				if applied {
					k.deleted = true
				}
			}
			if applied {
				m.recovered++
			}
			k.pending = nil
		}
		switch {
		case k.deleted && got != nil:
			t.Errorf("round %d: deleted key %s is in the database", round, k.id)
		case !k.deleted && got == nil:
			t.Errorf("round %d: acknowledged key %s is missing from the database", round, k.id)
		case got != nil && (string(got.Status) != k.state().Status || got.Description != k.state().Desc):
			t.Errorf("round %d: key %s is %s %q in the database, want %s %q", round, k.id, got.Status, got.Description, k.state().Status, k.state().Desc)
		}
		if !slices.Equal(states, k.history) || auditDeleted != k.deleted {
			t.Errorf("round %d: key %s: audit log %v (deleted %v), want %v (deleted %v)", round, k.id, states, auditDeleted, k.history, k.deleted)
		}
	}
	// No key in the writers' applications that the model does not know.
	for id, k := range dbKeys {
		if k.Application != "" && m.keys[id] == nil {
			t.Errorf("round %d: key %s (%q) is in the database but was never created by the test", round, id, k.Description)
		}
	}
}
