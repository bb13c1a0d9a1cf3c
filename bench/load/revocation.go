package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	// stages splits each deactivation's path (see revocationStages); nil
	// when the replicas serve no /debug/changefeed (a build before it).
	stages []stage
	// waits: how long the threads of each replica and of the database's
	// server processes waited for a core, in all, while the deactivations
	// ran (/proc/PID/task/*/schedstat), and how many times they ran;
	// phase is that phase's length.
	waits [3]waited
	phase time.Duration
}

type waited struct {
	name string
	wait time.Duration
	runs int64
}

// trial is one deactivation as the load generator saw it.
type trial struct {
	id             string
	acked, refused time.Time // A's 200 arrived; B's first refusal arrived
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
	// operation timeout on a busy machine (at load 50 on two cores, 1,000
	// keys did not).
	err = seedStore(ctx, store, db, n, 250)
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
	var trials []trial
	pg := backends(ctx, dbURL)
	phaseStart, schedA, schedB, schedPG := time.Now(), a.sched(), b.sched(), pg()
	for i := range c.revocations {
		k := victims + i
		tr, lag, early, n, took, err := revokeOnce(ctx, a, b, db.operator, db.ids[k], db.secrets[k])
		if err != nil {
			stopLoad()
			wg.Wait()
			return nil, fmt.Errorf("deactivation %d: %w", i+1, err)
		}
		rep.lags, rep.patch, polls = append(rep.lags, lag), append(rep.patch, took), polls+n
		trials = append(trials, tr)
		if early {
			rep.beforeAck++
		}
		time.Sleep(10 * time.Millisecond)
	}
	rep.phase = time.Since(phaseStart)
	for i, w := range []struct {
		name          string
		before, after schedstat
	}{{"replica A", schedA, a.sched()}, {"replica B", schedB, b.sched()}, {"PostgreSQL (this database's server processes)", schedPG, pg()}} {
		rep.waits[i].name = w.name
		rep.waits[i].wait, rep.waits[i].runs = w.after.since(w.before)
	}
	rep.stages = revocationStages(a, b, db.operator, trials)
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
func revokeOnce(ctx context.Context, a, b *process, operator, id, secret string) (tr trial, lag time.Duration, early bool, polls int, took time.Duration, err error) {
	mk := authorizeReqs([]string{secret})
	pc := &conn{addr: b.addr()}
	defer pc.close()
	req := mk(0, nil)
	if st, _, err := pc.do(req, false); err != nil || st != http.StatusOK {
		return trial{}, 0, false, 0, 0, fmt.Errorf("replica B answered %d (%v) before the deactivation, want 200", st, err)
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
		return trial{}, 0, false, 0, 0, err
	}
	r := <-done
	if r.err != nil {
		return trial{}, 0, false, r.polls, 0, r.err
	}
	if r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
		return trial{}, 0, false, r.polls, 0, fmt.Errorf("replica B answered %d for the deactivated key, want 401 or 403", r.status)
	}
	lag = r.at.Sub(acked)
	if lag < 0 {
		lag, early = 0, true
	}
	return trial{id: id, acked: acked, refused: r.at}, lag, early, r.polls, acked.Sub(sent), nil
}

// changeTiming is one entry of a replica's /debug/changefeed.
type changeTiming struct {
	ID      string    `json:"access_key_id"`
	Taken   time.Time `json:"taken"`
	Read    time.Time `json:"read"`
	Applied time.Time `json:"applied"`
}

// stage is one step of a deactivation's way from A to B's refusal, over
// the deactivations whose timings both replicas still held.
type stage struct {
	name string
	d    []time.Duration // sorted; may hold negative values (clocks of one host, events that overlap)
}

// revocationStages splits each trial's lag with the replicas' change feed
// timings (same host, same clock): A's own listener taking the
// notification stands for the commit.
func revocationStages(a, b *process, operator string, trials []trial) []stage {
	fetch := func(p *process) map[string]changeTiming {
		code, body, err := httpDo("GET", p.url+"/debug/changefeed", operator, "")
		if err != nil || code != http.StatusOK {
			return nil
		}
		var ts []changeTiming
		if json.Unmarshal(body, &ts) != nil {
			return nil
		}
		m := make(map[string]changeTiming, len(ts))
		for _, t := range ts {
			m[t.ID] = t // the last one wins: the deactivation's, not an earlier change's
		}
		return m
	}
	ta, tb := fetch(a), fetch(b)
	if ta == nil || tb == nil {
		return nil
	}
	stages := []stage{
		{name: "A took the notification -> A's 200 arrived (A's answer)"},
		{name: "A took the notification -> B took it (NOTIFY delivery and B's wake-up, relative)"},
		{name: "A's 200 arrived -> B took the notification"},
		{name: "B took it -> B's re-read returned (one query)"},
		{name: "B's re-read returned -> B's index updated"},
		{name: "B's index updated -> the poller saw B's refusal"},
		{name: "A's 200 arrived -> B's index updated (the lag, seen from B)"},
	}
	for _, t := range trials {
		x, okA := ta[t.id]
		y, okB := tb[t.id]
		if !okA || !okB {
			continue
		}
		for i, d := range []time.Duration{
			t.acked.Sub(x.Taken), y.Taken.Sub(x.Taken), y.Taken.Sub(t.acked),
			y.Read.Sub(y.Taken), y.Applied.Sub(y.Read), t.refused.Sub(y.Applied), y.Applied.Sub(t.acked),
		} {
			stages[i].d = append(stages[i].d, d)
		}
	}
	for i := range stages {
		slices.Sort(stages[i].d)
	}
	return stages
}

// backends returns a function that reads the scheduler counts of the
// server processes connected to the database at dbURL (empty when the
// server is not on this host or cannot be asked).
func backends(ctx context.Context, dbURL string) func() schedstat {
	return func() schedstat {
		s := schedstat{}
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return s
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
		if err != nil {
			return s
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return s
		}
		for _, pid := range pids {
			s.add(int(pid))
		}
		return s
	}
}
