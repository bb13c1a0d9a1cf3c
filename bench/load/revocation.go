package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/postgres"
)

// Revocation under load (`load -revocation N`): two
// replicas of latchkey serve on one PostgreSQL database, each under
// forward-auth load at a fixed rate (-revocation-rate, open loop, valid
// keys), and N deactivations of distinct keys through replica A's API
// (PATCH /v1/access-keys/{id} {"status":"Inactive"}). For each, a poller
// that is already sending that key to replica B back to back, on a
// connection of its own, notes when B first refuses it; the lag is the
// time from A's 200 to that refusal (0 when B refused before A's answer
// arrived). The replicas run with their default settings: the change
// reaches B through the change feed (LISTEN/NOTIFY), the periodic resync
// being only the fallback.
//
// The database is created for the run (lk_bench_ and random hex) on
// -postgres-url's server and dropped at the end.

type revocationReport struct {
	start, end            time.Time
	loadBefore, loadAfter string
	keys, trials          int
	rate                  float64
	lags                  []time.Duration // sorted
	beforeAck             int             // refusals seen before A's answer
	patch                 []time.Duration // PATCH round trips, sorted
	achievedA, achievedB  float64         // verifications/s meanwhile (load only, not the poller)
	pollsB                float64         // the poller's calls/s on B
	seedTook              time.Duration
}

// defaultPostgresURL is the server the revocation mode creates its
// database on.
const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// createDatabase creates an empty database on admin's server and returns
// its URL and a function that drops it.
func createDatabase(ctx context.Context, admin string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at -postgres-url: %w", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	name := "lk_bench_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		return "", nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench/load: dropping database %s: %v\n", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "bench/load: dropping database %s: %v\n", name, err)
		}
	}
	u, err := url.Parse(admin)
	if err != nil {
		drop()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

func revocation(ctx context.Context, c config) (*revocationReport, error) {
	rep := &revocationReport{start: time.Now(), loadBefore: loadavg(), trials: c.revocations, rate: c.revRate}
	if c.revocations < 1 {
		return nil, fmt.Errorf("-revocation must be at least 1")
	}
	dir, err := os.MkdirTemp("", "latchkey-bench-revocation")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := c.binary
	if bin == "" {
		c.logf("building latchkey")
		if bin, err = buildLatchkey(dir); err != nil {
			return nil, err
		}
	}
	dbURL, drop, err := createDatabase(ctx, c.pgURL)
	if err != nil {
		return nil, err
	}
	defer drop()

	n := max(c.keys, c.revocations+1)
	c.logf("seeding %d keys on PostgreSQL", n)
	seedStart := time.Now()
	store, err := postgres.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	db := &seeded{}
	// Smaller transactions than on SQLite: each key is a round trip to
	// the server, and a transaction must end within the store's
	// operation timeout on a busy machine.
	err = seedStore(ctx, store, db, n, 1000)
	store.Close()
	if err != nil {
		return nil, err
	}
	rep.seedTook, rep.keys = time.Since(seedStart), n
	// The last keys are deactivated; the load uses the others.
	victims := len(db.secrets) - c.revocations
	hot := hotSet(db.secrets[:victims], c.hot)

	c.logf("starting two replicas")
	a, _, err := startLatchkeyOn(bin, dir, dbURL, "")
	if err != nil {
		return nil, err
	}
	defer a.stop()
	b, _, err := startLatchkeyOn(bin, dir, dbURL, "")
	if err != nil {
		return nil, err
	}
	defer b.stop()
	for _, r := range []*process{a, b} {
		if err := preflight(target{r.name, r.addr(), r, authorizeReqs(hot), 200}, nil); err != nil {
			return nil, err
		}
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	outs := make([]*outcome, 2)
	loadStart := time.Now()
	for i, r := range []*process{a, b} {
		wg.Go(func() {
			outs[i], _ = openLoop(loadCtx, r.addr(), rateConns, c.revRate, 24*time.Hour, authorizeReqs(hot))
		})
	}
	time.Sleep(time.Second) // let the load settle
	var polls int
	for i := range c.revocations {
		k := victims + i
		lag, early, n, took, err := revokeOnce(ctx, a, b, db.operator, db.ids[k], db.secrets[k])
		if err != nil {
			stopLoad()
			wg.Wait()
			return nil, fmt.Errorf("deactivation %d: %w", i+1, err)
		}
		rep.lags, rep.patch, polls = append(rep.lags, lag), append(rep.patch, took), polls+n
		if early {
			rep.beforeAck++
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopLoad()
	wg.Wait()
	secs := time.Since(loadStart).Seconds()
	for i, o := range outs {
		if err := o.check(200); err != nil {
			return nil, fmt.Errorf("load on replica %d: %w", i+1, err)
		}
	}
	rep.achievedA, rep.achievedB = float64(outs[0].total())/secs, float64(outs[1].total())/secs
	rep.pollsB = float64(polls) / secs
	slices.Sort(rep.lags)
	slices.Sort(rep.patch)
	rep.end, rep.loadAfter = time.Now(), loadavg()
	return rep, nil
}

// revokeOnce deactivates key id through a and returns how long after a's
// 200 b first refused secret (early: b refused before a's answer came),
// how many calls the poller made, and the PATCH's round trip.
func revokeOnce(ctx context.Context, a, b *process, operator, id, secret string) (lag time.Duration, early bool, polls int, took time.Duration, err error) {
	mk := authorizeReqs([]string{secret})
	pc := &conn{addr: b.addr()}
	defer pc.close()
	req := mk(0, nil)
	if st, _, err := pc.do(req, false); err != nil || st != http.StatusOK {
		return 0, false, 0, 0, fmt.Errorf("replica B answered %d (%v) before the deactivation, want 200", st, err)
	}
	type refusal struct {
		at     time.Time
		status int
		polls  int
		err    error
	}
	done := make(chan refusal, 1)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	go func() {
		n := 0
		for pctx.Err() == nil {
			st, _, err := pc.do(req, false)
			n++
			if err != nil {
				done <- refusal{err: err, polls: n}
				return
			}
			if st != http.StatusOK {
				done <- refusal{at: time.Now(), status: st, polls: n}
				return
			}
		}
		done <- refusal{err: fmt.Errorf("replica B still accepted the key 10s after the deactivation"), polls: n}
	}()
	sent := time.Now()
	code, body, err := httpDo("PATCH", a.url+"/v1/access-keys/"+id, operator, `{"status":"Inactive"}`)
	acked := time.Now()
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("PATCH on replica A: %d %.200s", code, body)
	}
	if err != nil {
		cancel()
		<-done
		return 0, false, 0, 0, err
	}
	r := <-done
	if r.err != nil {
		return 0, false, r.polls, 0, r.err
	}
	if r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
		return 0, false, r.polls, 0, fmt.Errorf("replica B answered %d for the deactivated key, want 401 or 403", r.status)
	}
	lag = r.at.Sub(acked)
	if lag < 0 {
		lag, early = 0, true
	}
	return lag, early, r.polls, acked.Sub(sent), nil
}
